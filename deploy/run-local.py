#!/usr/bin/python3
"""Run the consumer on the embedded default: thopter-devbroker (Kafka),
the fake fly Machines API and, for provisioning, sshd on loopback.

Publishes a few sample requests, shows what happened (status events, dead
letters, the fake fly API's machines), then stops everything. Build first:
    cmake --preset dev && cmake --build --preset dev -j2
Options: --build-dir DIR (default build/dev), --keep (leave it running
until Ctrl-C so you can poke at it with kcat; the broker address is printed),
--kafka real (the same demo on a real Apache Kafka cluster, one KRaft node on
loopback, from the jars deploy/kafka/fetch-kafka.sh fetched; deploy/setup.sh
does that).
"""
import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "harness"))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build-dir", default=os.path.join(HERE, "..", "build", "dev"))
    ap.add_argument("--keep", action="store_true", help="keep running until Ctrl-C")
    ap.add_argument("--kafka", choices=["devbroker", "real"], default="devbroker",
                    help="the broker: thopter-devbroker, librdkafka's mock cluster (default), or a real "
                         "single-node Apache Kafka cluster")
    args = ap.parse_args()
    os.environ["THOPTER_BUILD_DIR"] = os.path.abspath(args.build_dir)
    if not os.path.exists(os.path.join(args.build_dir, "thopter-consumer")):
        sys.exit("run-local: %s has no thopter-consumer; build first: "
                 "cmake --preset dev && cmake --build --preset dev -j2" % args.build_dir)

    import thopter_harness as h
    from flyfake import FlyFake
    hosts = None
    if os.geteuid() == 0:
        from provision_harness import ThopterHosts
        hosts = ThopterHosts()
    else:
        print("run-local: not root, so no local SSH target: showing destroys only")

    if args.kafka == "real":
        print("== starting a real Apache Kafka cluster (one KRaft node on loopback) ...")
        broker = h.RealBroker()
        group_props = h.REAL_GROUP_PROPS
    else:
        broker = h.Devbroker()
        group_props = h.MOCK_GROUP_PROPS
    fly = FlyFake()
    fly.start(token=h.TOKEN, latency_ms=50, **(hosts.fly_config() if hosts else {}))
    kafka = h.Kafka(broker.bootstrap)
    consumer = None
    try:
        print("== %s on %s, fake fly API on %s" % (
            "Apache Kafka" if args.kafka == "real" else "thopter-devbroker", broker.bootstrap, fly.base_url))
        ids = [fly.seed_machine(id=h.machine_id(0x148e21a3c96980 + i), name="thopter-%d-demo" % i,
                                state="started")["id"] for i in range(5)]
        hub = fly.seed_machine(id=h.machine_id(0x9999), name="hub-1700000000", state="started")["id"]
        print("== seeded 5 thopter machines and the hub (%s)" % hub)

        if hosts:
            fly.seed_machine(name="gc-default", state="started")
        consumer = h.ThopterConsumer(broker.bootstrap, fly.base_url, role="all" if hosts else "destroy",
                                     env=hosts.env() if hosts else None, group_props=group_props)
        consumer.wait_assigned(timeout=30)
        nfinal = 7
        if hosts:
            nfinal += 1
            print("== publishing a provision request for acme/widgets#42 (local sshd stands in for the machine)")
            kafka.produce("thopter.provision", {
                "requestId": "demo-provision-1", "repository": "acme/widgets",
                "github": {"issueNumber": "42", "issueTitle": "Make the widgets spin",
                           "issueBody": "They should spin clockwise."}}, key="demo-provision-1")
        print("== thopter-consumer joined its group; publishing 5 destroys, 1 for the hub, 1 invalid")
        for i in ids:
            kafka.produce("thopter.destroy", {"thopterId": i, "reason": "demo"}, key=i)
        kafka.produce("thopter.destroy", {"thopterId": hub, "requestId": "demo-kill-hub"}, key=hub)
        kafka.produce("thopter.destroy", b"not json", key=b"oops")
        kafka.flush()

        h.wait_until(lambda: len([e for e in kafka.read_json("thopter.events")
                                  if e["state"] in ("completed", "failed")]) >= nfinal, timeout=60,
                     what="all 7 requests to finish")
        print("\n== status events (thopter.events)")
        for e in sorted(kafka.read_json("thopter.events"), key=lambda e: e["at"]):
            extra = (" error=%s: %s" % (e["error"]["class"], e["error"]["message"])) if "error" in e else ""
            state = e["state"] + (" " + e["step"] if e["state"] == "step" else "")
            print("  %s %-19s %-22s %s%s" % (e["at"], state, e["requestId"], e.get("thopterId", ""), extra))
        print("\n== dead letters (thopter.dlq)")
        for m in kafka.read_all("thopter.dlq"):
            hd = h.headers_dict(m)
            print("  key=%s class=%s step=%s: %s" % (m.key().decode(errors="replace"), hd["thopter.dlq.error.class"],
                                                    hd["thopter.dlq.error.step"], hd["thopter.dlq.error.message"]))
        if hosts:
            print("\n== on the provisioned machine (%s)" % hosts.home)
            for root, dirs, files in os.walk(hosts.home):
                dirs[:] = [d for d in dirs if d != ".git"]
                for name in sorted(files):
                    print("  " + os.path.relpath(os.path.join(root, name), hosts.home))
            print("  agent typed into tmux: %s" % ("yes" if hosts.agent_runs() else "no"))
        print("\n== machines in the fake fly API")
        for m in fly.machines():
            print("  %s %-18s %s" % (m["id"], m["name"], m["state"]))
        if args.keep:
            print("\nRunning. Try: kcat -b %s -C -t thopter.events -o beginning -e" % broker.bootstrap)
            print("Publish: echo '{\"thopterId\":\"%s\"}' | kcat -b %s -P -t thopter.destroy" % (ids[0], broker.bootstrap))
            print("Ctrl-C to stop.")
            while True:
                time.sleep(1)
        rc = consumer.stop()
        print("\n== thopter-consumer stopped on SIGTERM with exit status %d" % rc)
        return 0 if rc == 0 else 1
    except KeyboardInterrupt:
        return 0
    finally:
        if consumer:
            consumer.close()
        kafka.close()
        fly.stop()
        broker.stop()
        if hosts:
            hosts.close()


if __name__ == "__main__":
    sys.exit(main())

/* types.ts - the hub's own request and state types, and the status event.
 *
 * ProvisionRequest, DestroyRequest, GitHubContext, GitHubComment and
 * ThopterState are copies of thopter-swarm's hub/src/lib/types.ts (dd6852b),
 * field for field, so the hub's objects and its StateManager fit this
 * package's signatures structurally: the hub can keep its own types.ts.
 * `image` is new (contract section 2): the image the hub wants the thopter to
 * run; absent means the consumer's THOPTER_IMAGE.
 */

export interface GitHubComment {
  id: number;
  author: string;
  body: string;
  createdAt: string;
  updatedAt: string;
  url: string;
}

export interface GitHubContext {
  repository: string;
  issueNumber: string;
  issueTitle: string;
  issueBody: string;
  issueUrl: string;
  issueAuthor: string;
  mentionCommentId?: number;
  mentionAuthor: string;
  mentionLocation: 'body' | 'comment';
  assignees?: string[];
  labels?: string[];
  comments?: GitHubComment[];
}

export type RequestStatus = 'pending' | 'processing' | 'completed' | 'failed';

export interface ProvisionRequest {
  requestId: string;
  source: 'github';
  createdAt: Date;
  completedAt?: Date;
  status: RequestStatus;
  error?: string;
  thopterId?: string;
  repository: string;
  workBranch?: string;
  gc?: string;
  prompt?: string;
  image?: string;
  github: GitHubContext;
}

export interface DestroyRequest {
  requestId: string;
  source: 'dashboard' | 'api' | 'timeout';
  createdAt: Date;
  completedAt?: Date;
  status: RequestStatus;
  error?: string;
  thopterId: string;
  reason?: string;
}

export interface ThopterState {
  fly: {
    id: string;
    name: string;
    machineState: 'started' | 'stopped' | 'suspended' | 'destroyed';
    region: string;
    image: string;
    createdAt: Date;
  };
  hub: {
    killRequested: boolean;
  };
  session?: {
    tmuxState: 'active' | 'idle';
    claudeProcess: 'running' | 'notFound';
    lastActivity: Date;
    idleSince?: Date;
    screenDump: string;
  };
  github?: GitHubContext;
}

/** Contract section 3: one object per state change, on thopter.events, key requestId. */
export type EventState =
  | 'started'
  | 'step'
  | 'waiting_capacity'
  | 'waiting_fly'
  | 'retrying'
  | 'completed'
  | 'failed';

export interface StatusEvent {
  requestId: string;
  kind: 'provision' | 'destroy';
  state: EventState;
  step?: string;
  thopterId?: string;
  machineName?: string;
  region?: string;
  attempt: number;
  error?: { class: string; message: string };
  at: string;
  elapsedMs: number;
}

/** The hub's logger (hub/src/lib/logger.ts) has this shape; console-like loggers fit too. */
export interface HubLogger {
  info(message: string, thopterId?: string, source?: string): void;
  warn(message: string, thopterId?: string, source?: string): void;
  error(message: string, thopterId?: string, source?: string): void;
}

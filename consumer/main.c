/* main.c - thopter-consumer: wiring and signals only. */
#include <stdio.h>

int main(void) {
        puts("thopter-consumer " THOPTER_VERSION);
        return 0;
}

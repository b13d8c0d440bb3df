/*
 * The pod sandbox's process for nodes whose images are built without Docker (scripts/images.ts
 * compiles it with `gcc -static -Os` into registry.k8s.io/pause). It does what Kubernetes'
 * build/pause/linux/pause.c does: hold the pod's namespaces open, exit 0 on SIGINT or SIGTERM,
 * and, as PID 1 of a pod that shares its PID namespace, reap the zombies it inherits.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define VERSION "3.10.1-kvrf"

static void on_stop(int sig) {
  (void)sig;
  _exit(0);
}

static void on_child(int sig) {
  (void)sig;
  int saved = errno;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
  errno = saved;
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "-v") == 0) {
    printf("pause.c %s\n", VERSION);
    return 0;
  }
  if (getpid() != 1) fprintf(stderr, "pause: not PID 1\n");

  struct sigaction stop = {0};
  stop.sa_handler = on_stop;
  sigemptyset(&stop.sa_mask);
  if (sigaction(SIGINT, &stop, NULL) < 0 || sigaction(SIGTERM, &stop, NULL) < 0) return 1;

  struct sigaction child = {0};
  child.sa_handler = on_child;
  sigemptyset(&child.sa_mask);
  child.sa_flags = SA_NOCLDSTOP | SA_RESTART;
  if (sigaction(SIGCHLD, &child, NULL) < 0) return 2;

  for (;;) pause();
  return 42;
}

/*
 * LD_PRELOAD shim for the hostile-clients bench's server: every socket it
 * accepts gets a fixed SO_SNDBUF (PATCHWIRE_BENCH_SNDBUF bytes, default
 * 16384), which also turns off the kernel's send-buffer autotuning. Without
 * it, each stalled reader's connection lets the kernel absorb megabytes
 * (2.5 MB measured here), so 3000 of them would push the machine's TCP
 * memory past tcp_mem and slow every other socket on it. Node cannot set
 * SO_SNDBUF itself. Compiled by hostile.bench.ts into bench/results/.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <sys/socket.h>

static int sndbuf(void) {
  const char *value = getenv("PATCHWIRE_BENCH_SNDBUF");
  return value == NULL ? 16384 : atoi(value);
}

int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags) {
  static int (*real)(int, struct sockaddr *, socklen_t *, int);
  if (real == NULL) real = (int (*)(int, struct sockaddr *, socklen_t *, int))dlsym(RTLD_NEXT, "accept4");
  int accepted = real(fd, addr, len, flags);
  if (accepted >= 0) {
    int size = sndbuf();
    setsockopt(accepted, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  }
  return accepted;
}

/* A bounded UDP flood to a loopback address, for npm run bench (compiled with cc at bench time).
 * Usage: flood DST_IP DST_PORT SRC_IP RATE_PER_SEC DURATION_MS MAX_COUNT MODE SIZE FIRST_BYTE
 *   MODE bin: SIZE random bytes, byte 0 = FIRST_BYTE (or random when FIRST_BYTE < 0)
 *   MODE b64: SIZE random base64 characters (looks like an fwknop packet)
 *   MODE hex:HEX: the payload starts with HEX's bytes, the rest random (HEX of SIZE bytes: the same
 *     datagram every time, a replay; the version and tag of a knock: forgeries with a copied tag)
 *   RATE_PER_SEC 0 = as fast as sendmmsg goes.
 * Stops at whichever of MAX_COUNT and DURATION_MS comes first; prints {"sent":N,"ms":T,"errors":E}.
 * Refuses any destination or source outside 127.0.0.0/8 and 10.203.0.0/24 (the veth pair between
 * the benchmark's own two namespaces, bench/footprint.ts): it must never flood anything else. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define POOL 1024
#define BATCH 64
#define MAX_SIZE 1472
#define MAX_DURATION_MS 30000
#define MAX_COUNT 50000000L

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint64_t next_rand(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int loopback(const struct in_addr *a) {
  uint32_t h = ntohl(a->s_addr);
  return (h >> 24) == 127 || (h >> 8) == 0x0acb00; /* 127/8, or 10.203.0/24 */
}

int main(int argc, char **argv) {
  if (argc != 10) {
    fprintf(stderr, "usage: flood DST_IP DST_PORT SRC_IP RATE DURATION_MS MAX_COUNT bin|b64 SIZE FIRST_BYTE\n");
    return 2;
  }
  struct sockaddr_in dst = {.sin_family = AF_INET}, src = {.sin_family = AF_INET};
  if (inet_pton(AF_INET, argv[1], &dst.sin_addr) != 1 || !loopback(&dst.sin_addr) ||
      inet_pton(AF_INET, argv[3], &src.sin_addr) != 1 || !loopback(&src.sin_addr)) {
    fprintf(stderr, "flood: refusing a non-loopback address\n");
    return 2;
  }
  dst.sin_port = htons((uint16_t)atoi(argv[2]));
  double rate = atof(argv[4]);
  double duration = atof(argv[5]);
  long max_count = atol(argv[6]);
  int b64 = strcmp(argv[7], "b64") == 0;
  static unsigned char prefix[MAX_SIZE];
  int prefix_len = 0;
  if (strncmp(argv[7], "hex:", 4) == 0) {
    const char *h = argv[7] + 4;
    for (; h[0] && h[1] && prefix_len < MAX_SIZE; h += 2) {
      unsigned v;
      if (sscanf(h, "%2x", &v) != 1) break;
      prefix[prefix_len++] = (unsigned char)v;
    }
  }
  int size = atoi(argv[8]);
  int first = atoi(argv[9]);
  if (duration <= 0 || duration > MAX_DURATION_MS) duration = MAX_DURATION_MS;
  if (max_count <= 0 || max_count > MAX_COUNT) max_count = MAX_COUNT;
  if (size < 1 || size > MAX_SIZE) {
    fprintf(stderr, "flood: SIZE must be 1-%d\n", MAX_SIZE);
    return 2;
  }

  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0 || bind(fd, (struct sockaddr *)&src, sizeof src) != 0) {
    perror("flood: socket/bind");
    return 1;
  }
  /* Not connected: an ICMP port-unreachable from lo must not turn later sends into ECONNREFUSED. */
  static unsigned char pool[POOL][MAX_SIZE];
  static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  rng ^= (uint64_t)getpid() << 32;
  for (int i = 0; i < POOL; i++) {
    for (int j = 0; j < size; j++) pool[i][j] = b64 ? alphabet[next_rand() & 63] : (unsigned char)next_rand();
    if (!b64 && first >= 0) pool[i][0] = (unsigned char)first;
    memcpy(pool[i], prefix, (size_t)(prefix_len < size ? prefix_len : size));
  }
  static struct mmsghdr msgs[POOL];
  static struct iovec iov[POOL];
  for (int i = 0; i < POOL; i++) {
    iov[i].iov_base = pool[i];
    iov[i].iov_len = (size_t)size;
    msgs[i].msg_hdr.msg_name = &dst;
    msgs[i].msg_hdr.msg_namelen = sizeof dst;
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }

  long sent = 0, errors = 0;
  int cursor = 0;
  double t0 = now_ms(), t = t0;
  while (sent < max_count && (t = now_ms()) - t0 < duration) {
    long want = BATCH;
    if (rate > 0) {
      long due = (long)((t - t0) * rate / 1000.0);
      want = due - sent;
      if (want <= 0) {
        struct timespec pause = {0, 50000}; /* 50 µs */
        nanosleep(&pause, NULL);
        continue;
      }
      if (want > BATCH) want = BATCH;
    }
    if (want > max_count - sent) want = max_count - sent;
    if (want > POOL - cursor) want = POOL - cursor;
    int n = sendmmsg(fd, &msgs[cursor], (unsigned)want, 0);
    if (n < 0) {
      errors++;
      if (errno != EINTR && errno != ENOBUFS && errno != EAGAIN && errno != ECONNREFUSED) {
        perror("flood: sendmmsg");
        break;
      }
      continue;
    }
    sent += n;
    cursor = (cursor + n) % POOL;
  }
  printf("{\"sent\":%ld,\"ms\":%.0f,\"errors\":%ld}\n", sent, now_ms() - t0, errors);
  return 0;
}

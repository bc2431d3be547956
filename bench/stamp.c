/* The door command of every daemon in npm run bench: appends the wall-clock time as
 * "SECONDS.NANOSECONDS\n" (what `date +%s.%N` prints) to the file named by its argument, with one
 * O_APPEND write. A compiled program, so the command's own cost is a fork and an exec, not a shell
 * script that forks date. Usage: stamp FILE */
#include <fcntl.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  char line[32];
  int n = snprintf(line, sizeof line, "%lld.%09ld\n", (long long)ts.tv_sec, ts.tv_nsec);
  int fd = open(argv[1], O_WRONLY | O_APPEND | O_CREAT, 0644);
  if (fd < 0) return 1;
  int ok = write(fd, line, (size_t)n) == n;
  close(fd);
  return ok ? 0 : 1;
}

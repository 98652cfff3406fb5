/*
 * test_procfs.c - src/core/procfs.c against the fixture proc roots in tests/data/procfs
 * (see its README.md for what each line is and why it counts or not), and against this
 * process's own sockets in the real /proc.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tb/procfs.h"

#define ROOT TB_TEST_DATA "/procfs/"

static void test_count_fixtures(void **state)
{
    (void)state;
    uint64_t n = 99;
    /* 3 in tcp + 2 in tcp6 */
    assert_int_equal(tb_procfs_count_established(ROOT "basic", 9092, &n), 0);
    assert_int_equal(n, 5);
    /* port 9093 (0x2385): line 8 only */
    assert_int_equal(tb_procfs_count_established(ROOT "basic", 9093, &n), 0);
    assert_int_equal(n, 1);
    /* a port nobody uses */
    assert_int_equal(tb_procfs_count_established(ROOT "basic", 1, &n), 0);
    assert_int_equal(n, 0);
    /* no tcp6: the tcp count alone */
    assert_int_equal(tb_procfs_count_established(ROOT "v4only", 8080, &n), 0);
    assert_int_equal(n, 1);
    /* garbled header */
    n = 99;
    assert_int_equal(tb_procfs_count_established(ROOT "garbled", 9092, &n), -EINVAL);
    assert_int_equal(n, 0);
    /* nothing there */
    assert_int_equal(tb_procfs_count_established(ROOT "no-such-root", 9092, &n), -ENOENT);
}

static void test_status(void **state)
{
    (void)state;
    struct tb_proc_usage u = {-1, -1};
    assert_int_equal(tb_procfs_read_status(ROOT "basic", 4200200, &u), 0);
    assert_int_equal(u.rss_bytes, 1048576LL * 1024); /* 1 GiB */
    assert_int_equal(u.threads, 87);
    assert_int_equal(tb_procfs_read_status(ROOT "basic", 0, &u), 0); /* self */
    assert_int_equal(u.rss_bytes, 2048 * 1024);
    assert_int_equal(u.threads, 3);
    assert_int_equal(tb_procfs_read_status(ROOT "basic", 4200400, &u), -ENODATA);
    assert_int_equal(tb_procfs_read_status(ROOT "basic", 4200500, &u), -ENOENT);
    assert_int_equal(tb_procfs_read_status(ROOT "basic", 4200999, &u), -ENOENT);
}

static void test_cmdline(void **state)
{
    (void)state;
    assert_int_equal(tb_procfs_cmdline_matches(ROOT "basic", 4200200, "kafka.Kafka"), 1);
    /* NULs read as spaces: arguments can be matched across their boundary */
    assert_int_equal(tb_procfs_cmdline_matches(ROOT "basic", 4200200, "libs/* kafka.Kafka /etc"), 1);
    assert_int_equal(tb_procfs_cmdline_matches(ROOT "basic", 4200200, "zookeeper"), 0);
    assert_int_equal(tb_procfs_cmdline_matches(ROOT "basic", 4200400, "kafka"), 0); /* empty */
    assert_int_equal(tb_procfs_cmdline_matches(ROOT "basic", 4200200, ""), 0);
    assert_int_equal(tb_procfs_cmdline_matches(ROOT "basic", 4200999, "kafka"), -ENOENT);
}

static void test_find(void **state)
{
    (void)state;
    int pid = -1, matches = -1;
    /* 4200100 (wrapper, 900 kB) and 4200200 (JVM, 1 GiB) match; 4200300 is excluded (the bridge);
     * 4200500 matches but has no status (gone). The largest RSS wins. */
    assert_int_equal(tb_procfs_find_process(ROOT "basic", "kafka.Kafka", 4200300, &pid, &matches), 0);
    assert_int_equal(pid, 4200200);
    assert_int_equal(matches, 2);
    /* without the exclusion the bridge itself would match too (3 matches, 200 still wins) */
    assert_int_equal(tb_procfs_find_process(ROOT "basic", "kafka.Kafka", 0, &pid, &matches), 0);
    assert_int_equal(pid, 4200200);
    assert_int_equal(matches, 3);
    /* only the wrapper's command line has "exec java" */
    assert_int_equal(tb_procfs_find_process(ROOT "basic", "exec java", 4200300, &pid, &matches), 0);
    assert_int_equal(pid, 4200100);
    assert_int_equal(matches, 1);
    assert_int_equal(tb_procfs_find_process(ROOT "basic", "redpanda", 4200300, &pid, &matches),
                     -ESRCH);
    assert_int_equal(pid, 0);
    assert_int_equal(matches, 0);
    assert_int_equal(tb_procfs_find_process(ROOT "no-such-root", "kafka", 0, &pid, &matches),
                     -ENOENT);
}

/* The real /proc: this process's own listener and K accepted connections. */
static void test_count_own_sockets(void **state)
{
    (void)state;
    enum { K = 3 };
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(lfd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(lfd, 16), 0);
    socklen_t alen = sizeof(a);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &alen), 0);
    uint16_t port = ntohs(a.sin_port);

    uint64_t n = 99;
    assert_int_equal(tb_procfs_count_established("/proc", port, &n), 0);
    assert_int_equal(n, 0); /* the listener alone is not a connection */

    int cfd[K], sfd[K];
    for (int i = 0; i < K; i++) {
        cfd[i] = socket(AF_INET, SOCK_STREAM, 0);
        assert_int_equal(connect(cfd[i], (struct sockaddr *)&a, sizeof(a)), 0);
        sfd[i] = accept(lfd, NULL, NULL);
        assert_true(sfd[i] >= 0);
    }
    /* K server-side ends; the K client ends have ephemeral local ports */
    assert_int_equal(tb_procfs_count_established("/proc", port, &n), 0);
    assert_int_equal(n, K);

    /* the server closes one: its end goes to FIN_WAIT, the client's to CLOSE_WAIT */
    close(sfd[0]);
    assert_int_equal(tb_procfs_count_established("/proc", port, &n), 0);
    assert_int_equal(n, K - 1);
    for (int i = 0; i < K; i++) {
        close(cfd[i]);
        if (i > 0)
            close(sfd[i]);
    }
    close(lfd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_count_fixtures),
        cmocka_unit_test(test_status),
        cmocka_unit_test(test_cmdline),
        cmocka_unit_test(test_find),
        cmocka_unit_test(test_count_own_sockets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

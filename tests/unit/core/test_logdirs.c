/*
 * test_logdirs.c - src/core/logdirs.c on log directory trees built by the test, with
 * file sizes chosen by hand. Data bytes are checked against the hand-written sizes;
 * disk bytes against an independent nftw() walk summing st_blocks * 512.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tb/logdirs.h"
#include "../tmpdir.h"

struct tree {
    char root[64];
};

static char *path_of(const struct tree *t, const char *rel)
{
    char *p = NULL;
    assert_true(asprintf(&p, "%s/%s", t->root, rel) > 0);
    return p;
}

static void mkdir_rel(const struct tree *t, const char *rel)
{
    char *p = path_of(t, rel);
    assert_int_equal(mkdir(p, 0755), 0);
    free(p);
}

/* A file of @size bytes of data. */
static void file_rel(const struct tree *t, const char *rel, size_t size)
{
    char *p = path_of(t, rel);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    char buf[4096];
    memset(buf, 'k', sizeof(buf));
    for (size_t left = size; left > 0;) {
        size_t n = left < sizeof(buf) ? left : sizeof(buf);
        assert_int_equal(write(fd, buf, n), (ssize_t)n);
        left -= n;
    }
    assert_int_equal(close(fd), 0);
    free(p);
}

/* A preallocated sparse file (like Kafka's .index): st_size @size, no data blocks. */
static void sparse_rel(const struct tree *t, const char *rel, off_t size)
{
    char *p = path_of(t, rel);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, size), 0);
    assert_int_equal(close(fd), 0);
    free(p);
}

static int setup_tree(void **state)
{
    struct tree *t = calloc(1, sizeof(*t));
    tb_test_mkdtemp(t->root, sizeof(t->root), "tb-logdirs-test");
    *state = t;
    return 0;
}

static int teardown_tree(void **state)
{
    struct tree *t = *state;
    tb_test_rmtree(t->root);
    free(t);
    return 0;
}

/* Independent disk usage: st_blocks * 512 of every regular file (links not followed). */
static int64_t du_sum;
static int du_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)path;
    (void)ftw;
    if (flag == FTW_F && S_ISREG(sb->st_mode))
        du_sum += (int64_t)sb->st_blocks * 512;
    return 0;
}

static int64_t du(const char *dir)
{
    du_sum = 0;
    assert_int_equal(nftw(dir, du_entry, 16, FTW_PHYS), 0);
    return du_sum;
}

static void build_two_dirs(const struct tree *t)
{
    mkdir_rel(t, "d1");
    file_rel(t, "d1/meta.properties", 122);
    file_rel(t, "d1/recovery-point-offset-checkpoint", 20);
    file_rel(t, "d1/.lock", 0);
    mkdir_rel(t, "d1/orders-0");
    file_rel(t, "d1/orders-0/00000000000000000000.log", 5000);
    sparse_rel(t, "d1/orders-0/00000000000000000000.index", 10485760);
    sparse_rel(t, "d1/orders-0/00000000000000000000.timeindex", 10485756);
    file_rel(t, "d1/orders-0/00000000000000000500.log", 300);
    file_rel(t, "d1/orders-0/00000000000000000400.log.deleted", 400); /* disk only */
    file_rel(t, "d1/orders-0/leader-epoch-checkpoint", 8);
    mkdir_rel(t, "d1/orders-1");
    file_rel(t, "d1/orders-1/00000000000000000000.log", 0);
    mkdir_rel(t, "d1/my-topic-v2-12"); /* dashes in the topic name */
    file_rel(t, "d1/my-topic-v2-12/00000000000000000000.log", 77);
    mkdir_rel(t, "d1/orders-2.7f3e9a1b2c4d-delete"); /* being deleted: disk only */
    file_rel(t, "d1/orders-2.7f3e9a1b2c4d-delete/00000000000000000000.log", 9000);
    mkdir_rel(t, "d1/__consumer_offsets-0");
    file_rel(t, "d1/__consumer_offsets-0/00000000000000000000.log", 50);
    /* a symbolic link to a partition directory: not followed, not counted */
    char *target = path_of(t, "d1/orders-0"), *link = path_of(t, "d1/orders-9");
    assert_int_equal(symlink(target, link), 0);
    free(target);
    free(link);

    mkdir_rel(t, "d2");
    file_rel(t, "d2/meta.properties", 122);
    mkdir_rel(t, "d2/orders-3");
    file_rel(t, "d2/orders-3/00000000000000000000.log", 10);
    /* the same replica in two log dirs (Kafka: only transiently): summed */
    mkdir_rel(t, "d2/orders-0");
    file_rel(t, "d2/orders-0/00000000000000000000.log", 5);
}

static void assert_part(const struct tb_logdir_scan *s, size_t i, const char *topic,
                        int32_t partition, int64_t bytes)
{
    assert_string_equal(s->parts[i].topic, topic);
    assert_int_equal(s->parts[i].partition, partition);
    assert_int_equal(s->parts[i].log_bytes, bytes);
}

static void test_scan(void **state)
{
    struct tree *t = *state;
    build_two_dirs(t);
    char *d1 = path_of(t, "d1"), *d2 = path_of(t, "d2");
    const char *dirs[] = {d1, d2};
    struct tb_logdir_scan s;
    char err[256] = "";
    assert_int_equal(tb_logdirs_scan(dirs, 2, &s, err, sizeof(err)), 0);
    assert_string_equal(err, "");
    /* sorted by topic (strcmp: '_' < 'm' < 'o'), then partition */
    assert_int_equal(s.count, 5);
    assert_part(&s, 0, "__consumer_offsets", 0, 50);
    assert_part(&s, 1, "my-topic-v2", 12, 77);
    assert_part(&s, 2, "orders", 0, 5000 + 300 + 5);
    assert_part(&s, 3, "orders", 1, 0);
    assert_part(&s, 4, "orders", 3, 10);
    assert_int_equal(s.log_bytes, 50 + 77 + 5305 + 0 + 10);
    /* disk: allocated blocks of every regular file in both trees */
    assert_int_equal(s.disk_bytes, du(d1) + du(d2));
    /* the sparse index holds no blocks, so disk usage is far below the apparent size */
    struct stat st;
    char *idx = path_of(t, "d1/orders-0/00000000000000000000.index");
    assert_int_equal(stat(idx, &st), 0);
    free(idx);
    assert_true((int64_t)st.st_blocks * 512 < 10485760 / 2);
    assert_true(s.disk_bytes < 10485760);
    /* and the deleted/-delete data is on disk even though it is no partition's data */
    assert_true(s.disk_bytes >= 9000 + 400 + 5000);

    const struct tb_logdir_partition *p = tb_logdir_scan_find(&s, "orders", 3);
    assert_non_null(p);
    assert_int_equal(p->log_bytes, 10);
    assert_null(tb_logdir_scan_find(&s, "orders", 2));
    assert_null(tb_logdir_scan_find(&s, "orders", 9)); /* the symlink */
    assert_null(tb_logdir_scan_find(&s, "nope", 0));
    tb_logdir_scan_release(&s);
    assert_int_equal(s.count, 0);
    assert_null(s.parts);
    tb_logdir_scan_release(NULL);

    /* one dir alone */
    assert_int_equal(tb_logdirs_scan(dirs + 1, 1, &s, err, sizeof(err)), 0);
    assert_int_equal(s.count, 2);
    assert_part(&s, 0, "orders", 0, 5);
    assert_part(&s, 1, "orders", 3, 10);
    assert_int_equal(s.disk_bytes, du(d2));
    tb_logdir_scan_release(&s);
    /* no dirs: an empty, successful scan */
    assert_int_equal(tb_logdirs_scan(dirs, 0, &s, err, sizeof(err)), 0);
    assert_int_equal(s.count, 0);
    assert_int_equal(s.disk_bytes, 0);
    free(d1);
    free(d2);
}

static void test_errors(void **state)
{
    struct tree *t = *state;
    build_two_dirs(t);
    mkdir_rel(t, "empty-mount");
    char *d1 = path_of(t, "d1"), *empty = path_of(t, "empty-mount"),
         *missing = path_of(t, "missing");
    struct tb_logdir_scan s;
    char err[512], want[512];

    const char *a[] = {d1, empty};
    assert_int_equal(tb_logdirs_scan(a, 2, &s, err, sizeof(err)), -ENOENT);
    snprintf(want, sizeof(want),
             "%s: not a Kafka log directory (meta.properties: No such file or directory)", empty);
    assert_string_equal(err, want);
    assert_int_equal(s.count, 0); /* nothing partial */
    assert_null(s.parts);
    assert_int_equal(s.disk_bytes, 0);

    const char *b[] = {missing};
    assert_int_equal(tb_logdirs_scan(b, 1, &s, err, sizeof(err)), -ENOENT);
    snprintf(want, sizeof(want), "%s: No such file or directory", missing);
    assert_string_equal(err, want);

    /* an unreadable partition directory fails the scan (root reads everything) */
    if (geteuid() != 0) {
        char *p = path_of(t, "d1/orders-1");
        assert_int_equal(chmod(p, 0), 0);
        const char *c[] = {d1};
        assert_int_equal(tb_logdirs_scan(c, 1, &s, err, sizeof(err)), -EACCES);
        snprintf(want, sizeof(want), "%s/orders-1: Permission denied", d1);
        assert_string_equal(err, want);
        chmod(p, 0755);
        free(p);
    }
    free(d1);
    free(empty);
    free(missing);
}

static void test_parse_name(void **state)
{
    (void)state;
    size_t len = 0;
    int32_t p = -1;
    assert_true(tb_logdir_parse_name("orders-0", &len, &p));
    assert_int_equal(len, 6);
    assert_int_equal(p, 0);
    assert_true(tb_logdir_parse_name("a-b-c-17", &len, &p));
    assert_int_equal(len, 5);
    assert_int_equal(p, 17);
    assert_true(tb_logdir_parse_name("__cluster_metadata-0", &len, &p));
    assert_int_equal(len, 18);
    assert_true(tb_logdir_parse_name("t-999999999", &len, &p));
    assert_int_equal(p, 999999999);
    assert_false(tb_logdir_parse_name("t-1234567890", &len, &p)); /* > 9 digits */
    assert_false(tb_logdir_parse_name("-0", &len, &p));
    assert_false(tb_logdir_parse_name("orders-", &len, &p));
    assert_false(tb_logdir_parse_name("orders-x1", &len, &p));
    assert_false(tb_logdir_parse_name("orders", &len, &p));
    assert_false(tb_logdir_parse_name("orders-0.3f2a9c-delete", &len, &p));
    assert_false(tb_logdir_parse_name("orders-0.3f2a9c-future", &len, &p));
    assert_false(tb_logdir_parse_name("orders-0.3f2a9c-stray", &len, &p));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_scan, setup_tree, teardown_tree),
        cmocka_unit_test_setup_teardown(test_errors, setup_tree, teardown_tree),
        cmocka_unit_test(test_parse_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

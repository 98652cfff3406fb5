/*
 * tmpdir.h - a scratch directory for unit tests that need real files (header-only,
 * included by the tests that use it; not a module of the bridge).
 *
 *   tb_test_mkdtemp(buf, size, "tb-NAME-test")  creates /tmp/tb-NAME-test-XXXXXX in
 *                                               @buf (fails the test if it cannot);
 *   tb_test_rmtree(path)                        removes it and everything below it,
 *                                               symbolic links not followed.
 */
#ifndef TB_TEST_TMPDIR_H
#define TB_TEST_TMPDIR_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

static inline void tb_test_mkdtemp(char *buf, size_t size, const char *prefix)
{
    snprintf(buf, size, "/tmp/%s-XXXXXX", prefix);
    assert_non_null(mkdtemp(buf));
}

static inline int tb_test_rm_entry(const char *path, const struct stat *sb, int flag,
                                   struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static inline void tb_test_rmtree(const char *path)
{
    nftw(path, tb_test_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

#endif

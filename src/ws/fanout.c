/*
 * fanout.c - PURE helpers of the server's write path (libc only; see
 * include/tb/ws_internal.h, "fan-out helpers"). Found with the WebSocket fan-out
 * benchmark (tests/bench/ws, docs/benchmarks.md):
 *
 *   batching   a client with several frames pending (a burst of events, replies, then
 *              the metrics slot) gets them in ONE send(): each frame is framed here
 *              (RFC 6455 section 5.2, unmasked server frame, FIN + text opcode) into a
 *              scratch buffer written with LWS_WRITE_RAW. One WRITEABLE callback per
 *              frame instead cost one poll() round over every connection per queued
 *              frame, and one syscall per frame.
 *   keepalive  the server's own ping / idle policy. libwebsockets 4.1 keeps its
 *              per-connection "validity" timers in ONE sorted linked list and inserts
 *              by walking it from the head: every pong re-armed a timer at now +
 *              ping interval, i.e. at the tail, after walking all N connections.
 *              With 10,000 clients that is 10,000 walks of 10,000 nodes per ping
 *              interval, bunched up (clients that connected together are pinged
 *              together): seconds of service-thread CPU that stalled the fan-out.
 *              The server disables that policy and sweeps its sessions once a second
 *              instead (O(N) per second, no allocation).
 */
#include <string.h>

#include "tb/ws_internal.h"

size_t tb_ws_frame_header(unsigned char out[TB_WS_FRAME_HEADER_MAX], size_t len)
{
    out[0] = 0x81; /* FIN, opcode 1 (text) */
    if (len < 126) {
        out[1] = (unsigned char)len; /* server frames are not masked: bit 7 clear */
        return 2;
    }
    if (len <= 0xffff) {
        out[1] = 126;
        out[2] = (unsigned char)(len >> 8);
        out[3] = (unsigned char)len;
        return 4;
    }
    out[1] = 127;
    uint64_t v = (uint64_t)len;
    for (int i = 0; i < 8; i++)
        out[2 + i] = (unsigned char)(v >> (8 * (7 - i)));
    return 10;
}

bool tb_ws_batch_append(unsigned char *out, size_t cap, size_t *used, const void *payload,
                        size_t len)
{
    unsigned char hdr[TB_WS_FRAME_HEADER_MAX];
    size_t h = tb_ws_frame_header(hdr, len);
    if (*used > cap || cap - *used < h || cap - *used - h < len)
        return false;
    memcpy(out + *used, hdr, h);
    if (len)
        memcpy(out + *used + h, payload, len);
    *used += h + len;
    return true;
}

enum tb_ws_keepalive tb_ws_keepalive_check(int64_t now_ms, int64_t alive_ms, bool ping_sent,
                                           int64_t ping_after_ms, int64_t drop_after_ms)
{
    int64_t silent = now_ms - alive_ms;
    if (silent >= drop_after_ms)
        return TB_WS_KEEPALIVE_DROP;
    if (silent >= ping_after_ms && !ping_sent)
        return TB_WS_KEEPALIVE_PING;
    return TB_WS_KEEPALIVE_NOTHING;
}

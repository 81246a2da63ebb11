/*  =========================================================================
    test_shard_actor - the shard's session core (every admission rule, limit
    and limit+1), tensor-to-stage mapping, tensor hash checks (match,
    mismatch, missing entry), a shard actor over real sockets that
    refuses to start on a hash mismatch, and the CPU engine's slots by
    budget (the Vulkan engine: tests/gpu/test_shard_engine.c).
    ========================================================================= */

#include "bly_actor.h"
#include "bly_identity.h"
#include "bly_manifest.h"
#include "bly_model.h"
#include "bly_node.h"
#include "bly_node_status.h"
#include "shard/bly_shard_actor.h"
#include "shard/bly_shard_core.h"
#include "shard/bly_shard_engine.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const uint8_t s_r1[32] = {1};
static const uint8_t s_r2[32] = {2};

static bly_shard_core_t *
s_core(size_t sessions)
{
    bly_shard_config_t c = {1, 3, sessions, 64, 16, 1000};
    bly_shard_core_t *core = bly_shard_core_new(&c);
    ck_assert_ptr_nonnull(core);
    return core;
}

static int
s_admit(bly_shard_core_t *core, const uint8_t *r, uint64_t session, uint32_t epoch,
        uint32_t step, uint32_t pos, uint32_t n, uint64_t now, bool *reset)
{
    bly_shard_step_t st = {r, session, epoch, step, pos, n, 1, 3};
    return bly_shard_core_admit(core, &st, now, reset);
}

START_TEST(test_core_rules)
{
    bly_shard_core_t *core = s_core(2);
    bool reset;
    //  Unknown session: position must be 0.
    ck_assert_int_eq(s_admit(core, s_r1, 7, 1, 1, 3, 1, 0, &reset), BLY_SHARD_ERR_UNKNOWN);
    int slot = s_admit(core, s_r1, 7, 1, 1, 0, 4, 0, &reset);
    ck_assert_int_ge(slot, 0);
    ck_assert(reset);
    bly_shard_core_ran(core, slot, 4);
    //  Duplicate and stale steps are dropped without a reply.
    ck_assert_int_eq(s_admit(core, s_r1, 7, 1, 1, 0, 4, 1, &reset), BLY_SHARD_DROP);
    ck_assert_int_eq(s_admit(core, s_r1, 7, 0, 9, 0, 4, 1, &reset), BLY_SHARD_DROP);
    //  The next step must continue at position 4.
    ck_assert_int_eq(s_admit(core, s_r1, 7, 1, 2, 5, 1, 1, &reset), BLY_SHARD_ERR_POSITION);
    ck_assert_int_eq(s_admit(core, s_r1, 7, 1, 3, 4, 1, 1, &reset), slot);
    ck_assert(!reset);
    bly_shard_core_ran(core, slot, 1);
    //  A new epoch restarts at 0 (and only at 0).
    ck_assert_int_eq(s_admit(core, s_r1, 7, 2, 1, 5, 1, 2, &reset), BLY_SHARD_ERR_POSITION);
    ck_assert_int_eq(s_admit(core, s_r1, 7, 2, 1, 0, 2, 2, &reset), slot);
    ck_assert(reset);
    //  The same session id from another router is another session.
    ck_assert_int_ge(s_admit(core, s_r2, 7, 1, 1, 0, 1, 3, &reset), 0);
    ck_assert_uint_eq(bly_shard_core_sessions(core), 2);
    //  Full: busy until a session idles past idle_ms (1000).
    ck_assert_int_eq(s_admit(core, s_r1, 8, 1, 1, 0, 1, 500, &reset), BLY_SHARD_ERR_BUSY);
    ck_assert_int_ge(s_admit(core, s_r1, 8, 1, 1, 0, 1, 2000, &reset), 0);
    ck_assert(bly_shard_core_close(core, s_r1, 8));
    ck_assert(!bly_shard_core_close(core, s_r1, 8));
    ck_assert_uint_eq(bly_shard_core_expire(core, 100000), 1);
    ck_assert_uint_eq(bly_shard_core_sessions(core), 0);
    bly_shard_core_destroy(&core);
    bly_shard_core_destroy(&core);
}
END_TEST

START_TEST(test_core_limits)
{
    bly_shard_core_t *core = s_core(1);
    bool reset;
    bly_shard_step_t st = {s_r1, 1, 1, 1, 0, 16, 1, 3};
    //  n_batch 16 is the limit, 17 is refused; 0 tokens are refused.
    ck_assert_int_ge(bly_shard_core_admit(core, &st, 0, &reset), 0);
    st = (bly_shard_step_t) {s_r1, 2, 1, 1, 0, 17, 1, 3};
    ck_assert_int_eq(bly_shard_core_admit(core, &st, 0, &reset), BLY_SHARD_ERR_SHAPE);
    st.n_tokens = 0;
    ck_assert_int_eq(bly_shard_core_admit(core, &st, 0, &reset), BLY_SHARD_ERR_SHAPE);
    //  Stages outside 1-3.
    st = (bly_shard_step_t) {s_r1, 1, 1, 2, 16, 1, 0, 3};
    ck_assert_int_eq(bly_shard_core_admit(core, &st, 0, &reset), BLY_SHARD_ERR_SHAPE);
    st = (bly_shard_step_t) {s_r1, 1, 1, 2, 16, 1, 1, 4};
    ck_assert_int_eq(bly_shard_core_admit(core, &st, 0, &reset), BLY_SHARD_ERR_SHAPE);
    st = (bly_shard_step_t) {s_r1, 1, 1, 2, 16, 1, 3, 2};
    ck_assert_int_eq(bly_shard_core_admit(core, &st, 0, &reset), BLY_SHARD_ERR_SHAPE);
    //  n_ctx 64: position 63 + 1 token fits, 64 + 1 does not.
    st = (bly_shard_step_t) {s_r1, 1, 1, 2, 64, 1, 1, 3};
    ck_assert_int_eq(bly_shard_core_admit(core, &st, 0, &reset), BLY_SHARD_ERR_LIMIT);
    bly_shard_config_t bad = {3, 1, 1, 64, 16, 1000};
    ck_assert_ptr_null(bly_shard_core_new(&bad));
    bad = (bly_shard_config_t) {0, 1, 0, 64, 16, 1000};
    ck_assert_ptr_null(bly_shard_core_new(&bad));
    bly_shard_core_destroy(&core);
}
END_TEST

START_TEST(test_tensor_stage)
{
    ck_assert_int_eq(bly_shard_tensor_stage("token_embd.weight", 3), 0);
    ck_assert_int_eq(bly_shard_tensor_stage("blk.0.attn_q.weight", 3), 1);
    ck_assert_int_eq(bly_shard_tensor_stage("blk.2.ffn_up.weight", 3), 3);
    ck_assert_int_eq(bly_shard_tensor_stage("blk.3.ffn_up.weight", 3), -1);
    ck_assert_int_eq(bly_shard_tensor_stage("blk.x.ffn_up.weight", 3), -1);
    ck_assert_int_eq(bly_shard_tensor_stage("output_norm.weight", 3), 4);
    ck_assert_int_eq(bly_shard_tensor_stage("rope_freqs", 3), -1);
}
END_TEST

static char s_model_path[1024];
static char s_dir[64];

static bly_model_t *
s_model(void)
{
    const char *shared = getenv("BLY_SHARED_DIR");
    snprintf(s_model_path, sizeof(s_model_path), "%s/testdata/models/qwen3-tiny-q8.gguf",
             shared ? shared : "../shared");
    char err[256];
    bly_model_t *m = bly_model_load(s_model_path, err, sizeof(err));
    ck_assert_msg(m != NULL, "%s", err);
    return m;
}

//  Write the model's hashes; `corrupt` changes the hash of blk.1.attn_q.weight,
//  `drop` leaves blk.1.ffn_up.weight out.
static void
s_write_hashes(const bly_model_t *m, const char *path, bool corrupt, bool drop)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    const bly_gguf_t *g = bly_model_gguf(m);
    for (uint64_t i = 0; i < bly_gguf_tensor_count(g); i++) {
        const bly_gguf_tensor_t *t = bly_gguf_tensor_at(g, i);
        char hex[65];
        bly_shard_tensor_hash(t, hex);
        if (drop && strcmp(t->name, "blk.1.ffn_up.weight") == 0)
            continue;
        if (corrupt && strcmp(t->name, "blk.1.attn_q.weight") == 0)
            hex[0] = hex[0] == '0' ? '1' : '0';
        fprintf(f, "%s %s\n", t->name, hex);
    }
    fclose(f);
}

START_TEST(test_hashes)
{
    bly_model_t *m = s_model();
    snprintf(s_dir, sizeof(s_dir), "/tmp/bly-shard-test.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(s_dir));
    char path[128], err[256];
    snprintf(path, sizeof(path), "%s/hashes", s_dir);
    s_write_hashes(m, path, false, false);
    ck_assert_int_eq(bly_shard_verify_hashes(m, 0, 4, path, err, sizeof(err)), 0);
    s_write_hashes(m, path, true, false);
    ck_assert_int_eq(bly_shard_verify_hashes(m, 2, 2, path, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "blk.1.attn_q.weight hash mismatch"));
    //  A shard that does not serve layer 1 does not care.
    ck_assert_int_eq(bly_shard_verify_hashes(m, 3, 4, path, err, sizeof(err)), 0);
    s_write_hashes(m, path, false, true);
    ck_assert_int_eq(bly_shard_verify_hashes(m, 1, 2, path, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "no expected hash"));
    ck_assert_int_eq(bly_shard_verify_hashes(m, 1, 2, "/nonexistent", err, sizeof(err)), -1);
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(rmdir(s_dir), 0);
    bly_model_destroy(&m);
}
END_TEST

//  A shard actor with a mismatched hash file refuses to start; with the
//  right file it starts and answers a ping.
START_TEST(test_actor_refuses_mismatch)
{
    bly_model_t *m = s_model();
    snprintf(s_dir, sizeof(s_dir), "/tmp/bly-shard-test.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(s_dir));
    char hashes[128], text[2048], err[1024];
    snprintf(hashes, sizeof(hashes), "%s/hashes", s_dir);
    snprintf(text, sizeof(text),
             "node\n    name = s1\n    key_file = node.key\nactor\n    role = layer-shard\n"
             "    endpoint = ipc://%s/shard.ipc\n    model = \"%s\"\n    stages = 1-2\n"
             "    hashes = hashes\n    sessions = 2\n    n_ctx = 64\n",
             s_dir, s_model_path);
    bly_manifest_t *man = bly_manifest_parse(text, strlen(text), "test", s_dir, bly_node_schema(),
                                             err, sizeof(err));
    ck_assert_msg(man != NULL, "%s", err);
    bly_identity_t *id = bly_identity_new_random();
    bly_actor_args_t args = {"layer-shard", man, 0, id, NULL};
    s_write_hashes(m, hashes, true, false);
    zactor_t *actor = bly_actor_start(bly_shard_actor, &args, err, sizeof(err));
    ck_assert_ptr_null(actor);
    ck_assert_msg(strstr(err, "hash mismatch") != NULL, "%s", err);
    s_write_hashes(m, hashes, false, false);
    actor = bly_actor_start(bly_shard_actor, &args, err, sizeof(err));
    ck_assert_msg(actor != NULL, "%s", err);
    //  It measured its stages at start and published the figures for the
    //  member actor: some speed, no load yet; stopping withdraws them.
    uint32_t speed = 0, load = 1;
    ck_assert(bly_node_status_get(bly_identity_public_key(id), &speed, &load));
    ck_assert_uint_gt(speed, 0);
    ck_assert_uint_eq(load, 0);
    zactor_destroy(&actor);
    ck_assert(!bly_node_status_get(bly_identity_public_key(id), &speed, &load));
    ck_assert_int_eq(unlink(hashes), 0);
    char ipc[128];
    snprintf(ipc, sizeof(ipc), "%s/shard.ipc", s_dir);
    (void) unlink(ipc);
    ck_assert_int_eq(rmdir(s_dir), 0);
    bly_identity_destroy(&id);
    bly_manifest_destroy(&man);
    bly_model_destroy(&m);
}
END_TEST

//  The CPU engine: slots by the KV budget (limit and limit+1), none fitting is refused,
//  an unknown backend is refused, an embedding-only engine has every slot.
START_TEST(test_engine_cpu)
{
    bly_model_t *m = s_model();
    uint32_t L = bly_model_hparams(m)->n_layer;
    char err[256] = "";
    bly_shard_engine_config_t c = {.backend = "cpu", .device = -1, .layer_first = 0,
                                   .layer_end = L, .head = true, .sessions = 1,
                                   .budget = 1ull << 30, .n_ctx = 32, .n_batch = 8,
                                   .threads = 1};
    bly_shard_engine_t *e = bly_shard_engine_new(m, &c, err, sizeof(err));
    ck_assert_msg(e != NULL, "%s", err);
    uint64_t one = bly_shard_engine_bytes(e);
    ck_assert_str_eq(bly_shard_engine_device(e), "cpu");
    bly_shard_engine_destroy(&e);
    c.sessions = 8;
    c.budget = 3 * one;
    e = bly_shard_engine_new(m, &c, err, sizeof(err));
    ck_assert_uint_eq(bly_shard_engine_slots(e), 3);
    bly_shard_engine_destroy(&e);
    c.budget = 3 * one - 1;
    e = bly_shard_engine_new(m, &c, err, sizeof(err));
    ck_assert_uint_eq(bly_shard_engine_slots(e), 2);
    bly_shard_engine_destroy(&e);
    c.budget = one - 1;
    ck_assert_ptr_null(bly_shard_engine_new(m, &c, err, sizeof(err)));
    ck_assert_msg(strstr(err, "holds no session") != NULL, "%s", err);
    c.layer_end = 0;
    c.head = false;
    e = bly_shard_engine_new(m, &c, err, sizeof(err));
    ck_assert_msg(e != NULL, "%s", err);
    ck_assert_uint_eq(bly_shard_engine_slots(e), 8);
    bly_shard_engine_destroy(&e);
    c.backend = "opencl";
    ck_assert_ptr_null(bly_shard_engine_new(m, &c, err, sizeof(err)));
    ck_assert_msg(strstr(err, "not available") != NULL, "%s", err);
    bly_model_destroy(&m);
}
END_TEST

static Suite *
s_suite(void)
{
    Suite *s = suite_create("shard");
    TCase *tc = tcase_create("shard");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_core_rules);
    tcase_add_test(tc, test_core_limits);
    tcase_add_test(tc, test_tensor_stage);
    tcase_add_test(tc, test_hashes);
    tcase_add_test(tc, test_actor_refuses_mismatch);
    tcase_add_test(tc, test_engine_cpu);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(s_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}

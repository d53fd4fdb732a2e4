/*
 * engine_vk_test.c: the Vulkan layer under validation layers: device choice
 * and caps, buffer round trips and the reuse pool, pipeline caching,
 * automatic barriers (a read-after-write must see the write), re-submitting
 * a recording, timestamps, and errors returned instead of aborts.
 */
#include <string.h>

#include "engine_testutil.h"

TestSuite(engine_vk, .init = t_setup, .fini = t_teardown, .timeout = 60);

Test(engine_vk, caps_are_read)
{
    const vk_caps *c = vk_ctx_caps(T_ctx);
    cr_assert_gt(strlen(c->name), 0);
    cr_assert_geq(c->api_version, (1u << 22) | (1u << 12));
    cr_assert_gt(c->max_wg_invocations, 255);
    cr_assert(c->variant == VK_VARIANT_REG || c->variant == VK_VARIANT_SMEM ||
              c->variant == VK_VARIANT_F16);
    fprintf(stderr, "device %s subgroup %u arith %d fp16 %d fp16 storage %d variant %s\n", c->name,
            c->subgroup_size, c->subgroup_arith, c->fp16, c->fp16_storage, t_vname(c->variant));
}

Test(engine_vk, buffer_round_trip_and_bounds)
{
    vk_buf *b = NULL;
    rs_error e = {0};
    cr_assert_eq(vk_buf_create(T_ctx, 1000, &b, &e), RS_OK);
    cr_assert_eq(vk_buf_size(b), 1000);
    unsigned char in[1000];
    unsigned char out[1000];
    for (int i = 0; i < 1000; i++) {
        in[i] = (unsigned char)(i * 7);
    }
    cr_assert_eq(vk_buf_write(b, 0, in, sizeof in, &e), RS_OK);
    cr_assert_eq(vk_buf_read(b, 0, out, sizeof out, &e), RS_OK);
    cr_assert_arr_eq(in, out, sizeof in);
    cr_assert_eq(vk_buf_write(b, 900, in, 200, &e), RS_EINVAL);
    cr_assert(strstr(e.msg, "past") != NULL);
    cr_assert_eq(vk_buf_read(b, 1001, out, 0, &e), RS_EINVAL);
    cr_assert_eq(vk_buf_create(T_ctx, 0, &b, &e), RS_EINVAL);
    vk_buf_destroy(b);
    vk_buf_destroy(NULL);
}

Test(engine_vk, freed_blocks_are_reused)
{
    rs_error e = {0};
    vk_buf *a = NULL;
    vk_buf *b = NULL;
    uint32_t created0;
    uint32_t reused0;
    vk_ctx_pool_stats(T_ctx, &created0, &reused0);
    cr_assert_eq(vk_buf_create(T_ctx, 4096, &a, &e), RS_OK);
    vk_buf_destroy(a);
    cr_assert_eq(vk_buf_create(T_ctx, 4000, &b, &e), RS_OK);
    uint32_t created;
    uint32_t reused;
    vk_ctx_pool_stats(T_ctx, &created, &reused);
    cr_assert_eq(created, created0 + 1);
    cr_assert_eq(reused, reused0 + 1);
    cr_assert_eq(vk_buf_size(b), 4000);
    /* far larger: a new block, not the pooled one */
    vk_buf *c = NULL;
    cr_assert_eq(vk_buf_create(T_ctx, 1 << 20, &c, &e), RS_OK);
    vk_ctx_pool_stats(T_ctx, &created, &reused);
    cr_assert_eq(created, created0 + 2);
    vk_buf_destroy(b);
    vk_buf_destroy(c);
}

Test(engine_vk, pipelines_are_cached_by_spec)
{
    rs_error e = {0};
    vk_pipe *a = NULL;
    vk_pipe *b = NULL;
    vk_pipe *c = NULL;
    int32_t s0[1] = {0};
    int32_t s1[1] = {1};
    cr_assert_eq(vk_pipe_get(T_ctx, "act_fwd", s0, 1, 2, 12, &a, &e), RS_OK, "%s",
                 rs_error_text(&e));
    cr_assert_eq(vk_pipe_get(T_ctx, "act_fwd", s0, 1, 2, 12, &b, &e), RS_OK);
    cr_assert_eq(vk_pipe_get(T_ctx, "act_fwd", s1, 1, 2, 12, &c, &e), RS_OK);
    cr_assert_eq(a, b);
    cr_assert_neq(a, c);
    cr_assert_eq(vk_pipe_get(T_ctx, "no_such_shader", NULL, 0, 1, 0, &a, &e), RS_ENOENT);
    cr_assert(strstr(e.msg, "no_such_shader") != NULL);
}

/* y = relu(x); z = relu(y) in one recording: z must see y's values (the
 * sequence inserts the barrier) and re-submitting recomputes the same. */
Test(engine_vk, barrier_orders_dependent_dispatches)
{
    float xv[300];
    for (int i = 0; i < 300; i++) {
        xv[i] = (float)(i % 7) - 3.0f;
    }
    eng_tensor x = t_tensor(1, 3, 10, 10, xv);
    eng_tensor y = t_tensor(1, 3, 10, 10, NULL);
    eng_tensor z = t_tensor(1, 3, 10, 10, NULL);
    eng_tensor u = t_tensor(1, 3, 10, 10, NULL);
    eng_cmd *cmd = t_cmd(VK_VARIANT_REG);
    vk_seq *seq = eng_cmd_seq(cmd);
    int t0 = vk_seq_timestamp(seq);
    T_OK(eng_act_fwd(cmd, ENG_ACT_LEAKY, 0.5f, &x, &y, &TE));
    T_OK(eng_act_fwd(cmd, ENG_ACT_LEAKY, 0.5f, &x, &u, &TE)); /* independent: no barrier */
    T_OK(eng_act_fwd(cmd, ENG_ACT_LEAKY, 0.5f, &y, &z, &TE)); /* reads y: barrier */
    int t1 = vk_seq_timestamp(seq);
    uint32_t nd;
    uint32_t nb;
    vk_seq_stats(seq, &nd, &nb);
    cr_assert_eq(nd, 3);
    cr_assert_eq(nb, 1);
    for (int round = 0; round < 2; round++) {
        if (round == 0) {
            t_run(cmd);
        } else {
            T_OK(eng_cmd_submit(cmd, &TE));
        }
        float zv[300];
        T_OK(eng_tensor_read(&z, zv, &TE));
        for (int i = 0; i < 300; i++) {
            float want = xv[i] > 0 ? xv[i] : 0.25f * xv[i];
            cr_assert_float_eq(zv[i], want, 1e-6, "z[%d]", i);
        }
    }
    if (vk_ctx_caps(T_ctx)->timestamps) {
        cr_assert_geq(vk_seq_elapsed_ms(seq, t0, t1), 0.0);
    }
    cr_assert_lt(vk_seq_elapsed_ms(seq, 0, 999), 0.0);
    eng_cmd_destroy(cmd);
    eng_tensor_free(&x);
    eng_tensor_free(&y);
    eng_tensor_free(&z);
    eng_tensor_free(&u);
}

Test(engine_vk, bad_calls_return_errors)
{
    rs_error e = {0};
    eng_tensor x = t_tensor(1, 3, 4, 4, NULL);
    eng_tensor y = t_tensor(1, 3, 4, 5, NULL);
    eng_cmd *cmd = t_cmd(VK_VARIANT_REG);
    cr_assert_eq(eng_act_fwd(cmd, ENG_ACT_RELU, 0.0f, &x, &y, &e), RS_EINVAL);
    eng_conv cv = {.k = 5, .stride = 1, .pad = 2};
    cr_assert_eq(eng_conv2d_fwd(cmd, &cv, &x, &x, NULL, &y, &e), RS_EINVAL);
    cr_assert(strstr(e.msg, "k=5") != NULL, "%s", e.msg);
    cr_assert_eq(vk_seq_begin(eng_cmd_seq(cmd), &e), RS_ESTATE);
    t_run(cmd);
    cr_assert_eq(vk_seq_end(eng_cmd_seq(cmd), &e), RS_ESTATE);
    eng_cmd_destroy(cmd);
    eng_tensor_free(&x);
    eng_tensor_free(&y);
    eng_tensor_free(NULL);
}

Test(engine_vk, device_index_out_of_range_is_refused)
{
    rs_error e = {0};
    vk_ctx *c = NULL;
    vk_ctx_opts o = {.device_index = 999, .validation = 0, .variant = VK_VARIANT_AUTO};
    cr_assert_eq(vk_ctx_create(&o, &c, &e), RS_ENOENT);
    cr_assert_null(c);
    cr_assert(strstr(e.msg, "999") != NULL, "%s", e.msg);
}

/* The messenger must count what the layers report, or a "clean run" means
 * nothing: a pipeline whose layout lacks the shader's push constants is a
 * validation error (the creation itself may still succeed). */
Test(engine_vk_raw, validation_messages_are_counted)
{
    rs_error e = {0};
    vk_ctx *c = NULL;
    vk_ctx_opts o = {.device_index = -1, .validation = 1, .variant = VK_VARIANT_AUTO};
    cr_assert_eq(vk_ctx_create(&o, &c, &e), RS_OK, "%s", rs_error_text(&e));
    cr_assert_eq(vk_ctx_validation_errors(c), 0);
    vk_pipe *p = NULL;
    int32_t spec[1] = {0};
    fprintf(stderr, "(the next validation message is expected)\n");
    vk_pipe_get(c, "act_fwd", spec, 1, 2, 0, &p, &e);
    cr_assert_gt(vk_ctx_validation_errors(c), 0);
    vk_ctx_destroy(c);
}

/* The discrete-GPU path: buffers that are not host-visible are written and
 * read through the staging buffer (forced here on lavapipe), and ops see
 * the same data. */
Test(engine_vk_raw, staging_path_round_trips)
{
    rs_error e = {0};
    vk_ctx *c = NULL;
    vk_ctx_opts o = {
        .device_index = -1, .validation = 1, .variant = VK_VARIANT_AUTO, .force_staging = 1};
    cr_assert_eq(vk_ctx_create(&o, &c, &e), RS_OK, "%s", rs_error_text(&e));
    float in[1000];
    float out[1000];
    for (int i = 0; i < 1000; i++) {
        in[i] = (float)i - 500.0f;
    }
    eng_tensor x;
    eng_tensor y;
    cr_assert_eq(eng_tensor_alloc(c, 1, 10, 10, 10, &x, &e), RS_OK);
    cr_assert_eq(eng_tensor_alloc(c, 1, 10, 10, 10, &y, &e), RS_OK);
    cr_assert_eq(eng_tensor_write(&x, in, &e), RS_OK, "%s", rs_error_text(&e));
    cr_assert_eq(vk_buf_write(x.buf, 40, in, 8, &e), RS_OK); /* partial write at an offset */
    eng_cmd *cmd = NULL;
    cr_assert_eq(eng_cmd_create(c, VK_VARIANT_REG, &cmd, &e), RS_OK);
    cr_assert_eq(eng_cmd_begin(cmd, &e), RS_OK);
    cr_assert_eq(eng_act_fwd(cmd, ENG_ACT_RELU, 0.0f, &x, &y, &e), RS_OK);
    cr_assert_eq(eng_cmd_end(cmd, &e), RS_OK);
    cr_assert_eq(eng_cmd_submit(cmd, &e), RS_OK);
    cr_assert_eq(eng_tensor_read(&y, out, &e), RS_OK, "%s", rs_error_text(&e));
    for (int i = 0; i < 1000; i++) {
        float xi = (i == 10 || i == 11) ? in[i - 10] : in[i];
        cr_assert_float_eq(out[i], xi > 0 ? xi : 0.0f, 0.0, "y[%d]", i);
    }
    float part[3];
    cr_assert_eq(vk_buf_read(y.buf, 4 * 600, part, sizeof part, &e), RS_OK);
    cr_assert_float_eq(part[0], 100.0f, 0.0);
    eng_cmd_destroy(cmd);
    eng_tensor_free(&x);
    eng_tensor_free(&y);
    cr_assert_eq(vk_ctx_validation_errors(c), 0);
    vk_ctx_destroy(c);
}

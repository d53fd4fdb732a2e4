/*
 * removal_model_test.c: the model registry's store functions
 * (daemon/store_model.h): register once per job, lineage round trip, parent
 * checks, tenant filtering, unknown ids.
 */
#include <criterion/criterion.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "store.h"
#include "store_model.h"

static store *T_st;
static char T_path[256];

static void setup(void)
{
    snprintf(T_path, sizeof T_path, "/tmp/rs_model_test_%d.db", (int)getpid());
    unlink(T_path);
    rs_error e;
    cr_assert_eq(store_open(T_path, true, &T_st, &e), RS_OK, "%s", rs_error_text(&e));
    cr_assert_eq(sqlite3_exec(store_sqlite(T_st),
                              "INSERT INTO project(name, created_at, tenant) VALUES "
                              "('p', 0, 'acme'), ('q', 0, 'other')",
                              NULL, NULL, NULL),
                 SQLITE_OK);
}

static void teardown(void)
{
    store_close(T_st);
    char p[300];
    unlink(T_path);
    snprintf(p, sizeof p, "%s-wal", T_path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", T_path);
    unlink(p);
}

TestSuite(store_model, .init = setup, .fini = teardown);

Test(store_model, register_once_per_job_with_lineage)
{
    rs_error e;
    cJSON *trained = cJSON_Parse("[\"aa\",\"bb\"]");
    cJSON *metrics = cJSON_Parse("{\"steps\":20,\"loss\":0.05,\"masks\":[\"cc\",\"dd\"]}");
    store_model_spec spec = {.project = "p",
                             .task_kind = "removal",
                             .job_id = 0,
                             .trained_on = trained,
                             .metrics = metrics,
                             .checkpoint_hash = "0123456789abcdef"};
    int64_t id = 0, id2 = 0;
    bool existed = true;
    cr_assert_eq(store_model_register(T_st, &spec, 1000, &id, &existed, &e), RS_OK, "%s",
                 rs_error_text(&e));
    cr_assert(!existed);
    cr_assert_gt(id, 0);
    cJSON *m = NULL;
    cr_assert_eq(store_model_get(T_st, id, NULL, &m, &e), RS_OK, "%s", rs_error_text(&e));
    cr_assert_str_eq(cJSON_GetObjectItem(m, "task_kind")->valuestring, "removal");
    cr_assert_str_eq(cJSON_GetObjectItem(m, "project")->valuestring, "p");
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(m, "trained_on")), 2);
    cr_assert_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(m, "metrics"), "steps")->valuedouble, 20);
    cr_assert(cJSON_IsNull(cJSON_GetObjectItem(m, "parent_id")));
    cJSON_Delete(m);
    /* A child with a parent; a parent that does not exist is refused. */
    spec.parent_id = id;
    cr_assert_eq(store_model_register(T_st, &spec, 2000, &id2, &existed, &e), RS_OK, "%s",
                 rs_error_text(&e));
    cr_assert_neq(id2, id);
    cr_assert_eq(store_model_get(T_st, id2, NULL, &m, &e), RS_OK);
    cr_assert_eq(cJSON_GetObjectItem(m, "parent_id")->valuedouble, (double)id);
    cJSON_Delete(m);
    spec.parent_id = 999;
    int64_t id3 = 0;
    cr_assert_eq(store_model_register(T_st, &spec, 2000, &id3, &existed, &e), RS_ENOENT);
    /* Unknown project. */
    spec.parent_id = 0;
    spec.project = "nope";
    cr_assert_eq(store_model_register(T_st, &spec, 2000, &id3, &existed, &e), RS_ENOENT);
    cJSON_Delete(trained);
    cJSON_Delete(metrics);
}

Test(store_model, same_job_registers_once)
{
    rs_error e;
    cr_assert_eq(
        sqlite3_exec(
            store_sqlite(T_st),
            "INSERT INTO job(id, project_id, kind, params, priority, state, "
            "tasks_total, created_at) VALUES (7, 1, 'removal_train', '{}', 0, 'running', 1, 0)",
            NULL, NULL, NULL),
        SQLITE_OK, "%s", sqlite3_errmsg(store_sqlite(T_st)));
    store_model_spec spec = {
        .project = "p", .task_kind = "removal", .job_id = 7, .checkpoint_hash = "ab"};
    int64_t a = 0, b = 0;
    bool existed = false;
    cr_assert_eq(store_model_register(T_st, &spec, 1, &a, &existed, &e), RS_OK, "%s",
                 rs_error_text(&e));
    cr_assert(!existed);
    cr_assert_eq(store_model_register(T_st, &spec, 2, &b, &existed, &e), RS_OK);
    cr_assert(existed);
    cr_assert_eq(a, b);
    cJSON *list = NULL;
    cr_assert_eq(store_model_list(T_st, NULL, NULL, &list, &e), RS_OK);
    cr_assert_eq(cJSON_GetArraySize(list), 1);
    cJSON_Delete(list);
}

Test(store_model, tenant_and_project_filters)
{
    rs_error e;
    store_model_spec spec = {.project = "p", .task_kind = "removal", .checkpoint_hash = "ab"};
    int64_t id = 0;
    bool existed = false;
    cr_assert_eq(store_model_register(T_st, &spec, 1, &id, &existed, &e), RS_OK);
    spec.project = "q";
    int64_t idq = 0;
    cr_assert_eq(store_model_register(T_st, &spec, 1, &idq, &existed, &e), RS_OK);
    cJSON *list = NULL;
    cr_assert_eq(store_model_list(T_st, "p", NULL, &list, &e), RS_OK);
    cr_assert_eq(cJSON_GetArraySize(list), 1);
    cJSON_Delete(list);
    cr_assert_eq(store_model_list(T_st, NULL, "other", &list, &e), RS_OK);
    cr_assert_eq(cJSON_GetArraySize(list), 1);
    cr_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(list, 0), "project")->valuestring, "q");
    cJSON_Delete(list);
    cJSON *m = NULL;
    cr_assert_eq(store_model_get(T_st, id, "other", &m, &e), RS_ENOENT);
    cr_assert_eq(store_model_get(T_st, 12345, NULL, &m, &e), RS_ENOENT);
    cr_assert(strstr(rs_error_text(&e), "no model 12345") != NULL);
}

# Ops helpers of rushesd: cron, tokens and roles, Prometheus rendering.
rs_unit_test(ops_test LABELS "ops" SOURCES ${CMAKE_CURRENT_LIST_DIR}/ops_test.c
             LIBS rs_daemon_ops rs_common PkgConfig::CJSON TIMEOUT 60)

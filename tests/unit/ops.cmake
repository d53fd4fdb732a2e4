# Ops helpers of rushesd: cron, tokens and roles, Prometheus rendering.
rs_unit_test(ops_test LABELS "ops" SOURCES ${CMAKE_CURRENT_LIST_DIR}/ops_test.c
             LIBS rs_daemon_ops rs_common PkgConfig::CJSON TIMEOUT 60)
# Training windows: cron evaluation and the store's lease filter and yield.
rs_unit_test(ops_window_test LABELS "ops" SOURCES ${CMAKE_CURRENT_LIST_DIR}/ops_window_test.c
             LIBS rs_daemon_ops rs_store rs_common PkgConfig::CJSON PkgConfig::SQLITE TIMEOUT 60)

# Operating the farm (docs/OPERATIONS.md): auth, metrics, dashboard, backup,
# schedules, limits, TLS proxy. Real rushesd + workers on loopback.
rs_script_test(ops_auth LABELS "ops;integration"
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/ops_auth_test.sh TIMEOUT 120)
rs_script_test(ops_metrics LABELS "ops;integration"
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/ops_metrics_test.sh TIMEOUT 120)
rs_script_test(ops_dashboard LABELS "ops;integration"
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/ops_dashboard_test.sh TIMEOUT 180)
rs_script_test(ops_backup LABELS "ops;integration"
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/ops_backup_test.sh TIMEOUT 180)
rs_script_test(ops_schedule LABELS "ops;integration"
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/ops_schedule_test.sh TIMEOUT 120)
rs_script_test(ops_limits LABELS "ops;integration"
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/ops_limits_test.sh TIMEOUT 180)
rs_script_test(ops_tls LABELS "ops;integration"
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/ops_tls_test.sh TIMEOUT 120)
if(TARGET rs_removal)
  rs_script_test(ops_window LABELS "ops;integration"
    COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/ops_window_test.sh TIMEOUT 420)
endif()

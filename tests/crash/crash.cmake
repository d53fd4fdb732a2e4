rs_script_test(crash_worker_kill LABELS "queue;crash"
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/worker_kill_test.sh TIMEOUT 120)
rs_script_test(crash_daemon_kill LABELS "queue;crash"
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/daemon_kill_test.sh TIMEOUT 600)

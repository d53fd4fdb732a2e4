rs_script_test(farm_integration LABELS "queue;integration"
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/farm_test.sh TIMEOUT 400)

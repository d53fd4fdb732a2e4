# rushesd end to end on loopback: REST API, worker socket, start-up refusals.
rs_unit_test(api_test LABELS "queue;integration" TIMEOUT 120
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/api_test.c
  LIBS rs_proto rs_common nng::nng PkgConfig::SQLITE PkgConfig::CJSON)
add_dependencies(api_test rushesd)

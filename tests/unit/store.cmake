rs_unit_test(store_test LABELS "queue" SOURCES ${CMAKE_CURRENT_LIST_DIR}/store_test.c
             LIBS rs_store rs_common PkgConfig::SQLITE TIMEOUT 180)

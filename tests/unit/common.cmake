rs_unit_test(common_test LABELS "ops" SOURCES ${CMAKE_CURRENT_LIST_DIR}/common_test.c LIBS rs_common)

rs_unit_test(worker_test LABELS "queue" SOURCES ${CMAKE_CURRENT_LIST_DIR}/worker_test.c
             LIBS rs_worker TIMEOUT 60)
# The runner tests spawn the real binary.
add_dependencies(worker_test rushes-worker)

# Ingest area: file hashing and media probes ("media"), the ingest job kind
# and its ASC MHL manifests ("queue").
rs_unit_test(hash_test LABELS "media" SOURCES ${CMAKE_CURRENT_LIST_DIR}/hash_test.c LIBS rs_common)
rs_unit_test(probe_test LABELS "media" SOURCES ${CMAKE_CURRENT_LIST_DIR}/probe_test.c LIBS rs_media)
rs_unit_test(ingest_test LABELS "queue" SOURCES ${CMAKE_CURRENT_LIST_DIR}/ingest_test.c LIBS rs_tasks)
rs_unit_test(mhl_test LABELS "queue" SOURCES ${CMAKE_CURRENT_LIST_DIR}/mhl_test.c LIBS rs_tasks)

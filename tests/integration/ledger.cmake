# ledger integration: rushesd + a worker + the CLI: consent gate at submit
# and dispatch, export/verify offline and tampered, `rushes audit` of frames
# recorded by ledger_record (a stand-in for the removal kind).
add_executable(ledger_record ${CMAKE_CURRENT_LIST_DIR}/ledger_record.c)
target_link_libraries(ledger_record PRIVATE rs_ledger rs_store)
rs_script_test(ledger_integration LABELS "ledger;integration"
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/ledger_farm_test.sh TIMEOUT 300)
# A real removal job under the ledger: labels in the outputs, audit coverage,
# one pixel changed after the fact.
rs_script_test(ledger_removal_integration LABELS "ledger;integration"
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/ledger_removal_test.sh TIMEOUT 180)
# Finalisation runs off rushesd's loop: the API answers within 500 ms while a
# job's finalize takes seconds (noop's "finalize_ms" test knob), and a stop
# during a finalisation is clean.
rs_script_test(ledger_finalize_integration LABELS "ledger;integration"
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/ledger_finalize_test.sh TIMEOUT 120)

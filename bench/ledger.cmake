# ledger_bench: compliance audit speed for bench/ledger.
add_executable(ledger_bench ${CMAKE_CURRENT_LIST_DIR}/ledger_bench.c)
target_link_libraries(ledger_bench PRIVATE rs_ledger rs_store)

# End-to-end test of the slimserve binary with a Python gRPC client (stubs generated from proto/ at test
# time). Needs /usr/bin/python3 with grpcio and numpy, protoc and grpc_python_plugin on PATH.
add_test(NAME python_client_test COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/python_client_test.py --server $<TARGET_FILE:slimserve> --proto-dir ${PROJECT_SOURCE_DIR}/proto --example ${PROJECT_SOURCE_DIR}/examples/fashion_mnist)
set_tests_properties(python_client_test PROPERTIES TIMEOUT 300)

// slimctl's client commands: they talk to a running slimserve (or any Open
// Inference Protocol gRPC server) at --url.
#ifndef SLIMSERVE_CLI_CLIENT_H_
#define SLIMSERVE_CLI_CLIENT_H_

#include <string>

namespace slimserve::cli {

// True for the names of client commands.
bool IsClientCommand(const std::string& command);
// Runs `command` with the arguments after its name; returns the exit code.
int ClientCommand(const std::string& command, int argc, char** argv);

}  // namespace slimserve::cli

#endif  // SLIMSERVE_CLI_CLIENT_H_

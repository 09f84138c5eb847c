// slimctl's offline commands: they load an ONNX file in-process, no server.
#ifndef SLIMSERVE_CLI_OFFLINE_H_
#define SLIMSERVE_CLI_OFFLINE_H_

namespace slimserve::cli {

// Each takes the arguments after the command name and returns the exit code.
int RunCommand(int argc, char** argv);
int BenchCommand(int argc, char** argv);
int InspectCommand(int argc, char** argv);
int CompressCommand(int argc, char** argv);

}  // namespace slimserve::cli

#endif  // SLIMSERVE_CLI_OFFLINE_H_

// A small command-line parser for slimctl's subcommands:
// positional arguments, `--name value`, `--name=value` and boolean `--flag`.
#ifndef SLIMSERVE_CLI_ARGS_H_
#define SLIMSERVE_CLI_ARGS_H_

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace slimserve::cli {

class Args {
 public:
  // `flags` are the options that take no value; every other --option takes one.
  // Options in `repeated` may be given several times.
  static absl::StatusOr<Args> Parse(int argc, char** argv, const std::set<std::string>& flags,
                                    const std::set<std::string>& valued,
                                    const std::set<std::string>& repeated = {});

  const std::vector<std::string>& positional() const { return positional_; }
  bool Has(const std::string& name) const { return values_.count(name) > 0; }
  std::string Get(const std::string& name, const std::string& fallback = "") const;
  std::vector<std::string> GetAll(const std::string& name) const;
  absl::StatusOr<int64_t> GetInt(const std::string& name, int64_t fallback) const;

 private:
  std::vector<std::string> positional_;
  std::multimap<std::string, std::string> values_;
};

}  // namespace slimserve::cli

#endif  // SLIMSERVE_CLI_ARGS_H_

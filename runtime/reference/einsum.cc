// Einsum, as numpy.einsum: explicit ("ij,jk->ik") and implicit ("ij,jk")
// outputs, ellipses, repeated labels within a term (diagonals). A plain loop
// over every combination of label values: an oracle, not a fast path.
#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "runtime/reference/common.h"
#include "runtime/reference/nn_ops.h"
#include "runtime/reference/reduction.h"
#include "runtime/status_macros.h"

namespace slimserve::runtime::reference {
namespace {

// Letters are labels 0..51 in ASCII order (the implicit output's order);
// the dims an ellipsis stands for are labels kEllipsis + j, right-aligned
// across inputs as in numpy broadcasting.
constexpr int kLetters = 52;
constexpr int kEllipsisToken = -1;

struct EinsumPlan {
  std::vector<int64_t> sizes;            // per label; -1 when unused
  std::vector<std::vector<int>> inputs;  // per input, the label of each dim
  std::vector<int> output;               // the label of each output dim
};

// A term as letter labels and kEllipsisToken.
absl::StatusOr<std::vector<int>> Tokenize(absl::string_view term) {
  std::vector<int> tokens;
  for (size_t i = 0; i < term.size(); ++i) {
    const char ch = term[i];
    if (ch >= 'A' && ch <= 'Z') {
      tokens.push_back(ch - 'A');
    } else if (ch >= 'a' && ch <= 'z') {
      tokens.push_back(26 + ch - 'a');
    } else if (term.substr(i, 3) == "..." &&
               std::count(tokens.begin(), tokens.end(), kEllipsisToken) == 0) {
      tokens.push_back(kEllipsisToken);
      i += 2;
    } else if (ch != ' ') {
      return absl::InvalidArgumentError(absl::StrCat("invalid equation term '", term, "'"));
    }
  }
  return tokens;
}

absl::StatusOr<EinsumPlan> PlanEinsum(const Node& node, const std::vector<Shape>& shapes) {
  auto invalid = [&](absl::string_view message) {
    return absl::InvalidArgumentError(absl::StrCat(node.Describe(), ": ", message));
  };
  const std::string equation = node.GetString("equation", "");
  const size_t arrow = equation.find("->");
  const std::vector<std::string> terms = absl::StrSplit(equation.substr(0, arrow), ',');
  if (terms.size() != shapes.size()) {
    return invalid(absl::StrCat("equation '", equation, "' has ", terms.size(), " terms for ",
                                shapes.size(), " inputs"));
  }
  // Ellipsis rank of every input, then the broadcast ellipsis rank.
  std::vector<std::vector<int>> tokens;
  std::vector<int64_t> ellipsis_ranks;
  for (size_t i = 0; i < terms.size(); ++i) {
    absl::StatusOr<std::vector<int>> t = Tokenize(terms[i]);
    if (!t.ok()) return invalid(t.status().message());
    const int64_t letters = std::count_if(t->begin(), t->end(), [](int l) { return l >= 0; });
    const bool ellipsis = static_cast<int64_t>(t->size()) > letters;
    const int64_t rank = static_cast<int64_t>(shapes[i].size());
    if (ellipsis ? rank < letters : rank != letters) {
      return invalid(absl::StrCat("term '", terms[i], "' does not fit input ", i, " of shape ",
                                  ShapeToString(shapes[i])));
    }
    ellipsis_ranks.push_back(rank - letters);
    tokens.push_back(*std::move(t));
  }
  const int64_t ellipsis_rank = *std::max_element(ellipsis_ranks.begin(), ellipsis_ranks.end());
  EinsumPlan plan;
  plan.sizes.assign(kLetters + ellipsis_rank, -1);
  std::vector<int> uses(plan.sizes.size(), 0);
  for (size_t i = 0; i < tokens.size(); ++i) {
    std::vector<int>& labels = plan.inputs.emplace_back();
    for (int t : tokens[i]) {
      if (t != kEllipsisToken) {
        labels.push_back(t);
        continue;
      }
      for (int64_t j = ellipsis_rank - ellipsis_ranks[i]; j < ellipsis_rank; ++j) {
        labels.push_back(static_cast<int>(kLetters + j));
      }
    }
    for (size_t d = 0; d < labels.size(); ++d) {
      int64_t& size = plan.sizes[labels[d]];
      const int64_t dim = shapes[i][d];
      ++uses[labels[d]];
      // Ellipsis dims broadcast; letters must agree.
      const bool broadcast = labels[d] >= kLetters && (size == 1 || dim == 1);
      if (size >= 0 && size != dim && !broadcast) {
        return invalid(absl::StrCat("label sizes ", size, " and ", dim, " disagree"));
      }
      if (size < 0 || size == 1) size = dim;
    }
  }
  // The loop visits every combination of label values.
  double work = static_cast<double>(shapes.size());
  for (int64_t size : plan.sizes) {
    if (size >= 0) work *= static_cast<double>(size);  // -1: an unused label
  }
  if (work > 1e11) {
    return absl::UnimplementedError(
        absl::StrCat(node.Describe(), ": too large for the reference Einsum loop"));
  }
  if (arrow == std::string::npos) {
    for (int64_t j = 0; j < ellipsis_rank; ++j)
      plan.output.push_back(static_cast<int>(kLetters + j));
    for (int l = 0; l < kLetters; ++l) {
      if (uses[l] == 1) plan.output.push_back(l);
    }
    return plan;
  }
  absl::StatusOr<std::vector<int>> out = Tokenize(absl::string_view(equation).substr(arrow + 2));
  if (!out.ok()) return invalid(out.status().message());
  for (int t : *out) {
    if (t == kEllipsisToken) {
      for (int64_t j = 0; j < ellipsis_rank; ++j)
        plan.output.push_back(static_cast<int>(kLetters + j));
    } else if (uses[t] == 0 || std::count(plan.output.begin(), plan.output.end(), t) > 0) {
      return invalid(absl::StrCat("invalid output term in '", equation, "'"));
    } else {
      plan.output.push_back(t);
    }
  }
  return plan;
}

std::vector<Shape> InputShapes(InferContext& c) {
  std::vector<Shape> shapes;
  for (size_t i = 0; i < c.num_inputs(); ++i) shapes.push_back(c.input(i).shape);
  return shapes;
}

absl::Status InferEinsum(InferContext& c) {
  if (c.num_inputs() == 0) return c.Error("needs at least one input");
  RETURN_IF_ERROR(CheckInputTypes(c, 0, c.num_inputs(),
                                  {DataType::kFloat32, DataType::kFloat64, DataType::kInt32,
                                   DataType::kInt64, DataType::kUint32, DataType::kUint64}));
  ASSIGN_OR_RETURN(const EinsumPlan plan, PlanEinsum(c.node, InputShapes(c)));
  Shape out;
  for (int l : plan.output) out.push_back(plan.sizes[l]);
  c.SetOutput(0, c.input(0).dtype, out);
  return absl::OkStatus();
}

absl::Status Einsum(ComputeContext& c) {
  std::vector<Shape> shapes;
  for (size_t i = 0; i < c.num_inputs(); ++i) shapes.push_back(c.input(i).shape());
  ASSIGN_OR_RETURN(const EinsumPlan plan, PlanEinsum(c.node, shapes));
  // Loop order: output labels (outer, so outputs come in order), then the summed ones.
  std::vector<int> order = plan.output;
  for (int l = 0; l < static_cast<int>(plan.sizes.size()); ++l) {
    if (plan.sizes[l] >= 0 && std::count(order.begin(), order.end(), l) == 0) order.push_back(l);
  }
  std::vector<int64_t> sizes;
  for (int l : order) sizes.push_back(plan.sizes[l]);
  // strides[i][k]: step of input i's offset when label order[k] advances;
  // repeated labels add up (a diagonal), broadcast dims stay put.
  std::vector<std::vector<int64_t>> strides(shapes.size(), std::vector<int64_t>(order.size(), 0));
  for (size_t i = 0; i < shapes.size(); ++i) {
    const std::vector<int64_t> dim_strides = Strides(shapes[i]);
    for (size_t d = 0; d < shapes[i].size(); ++d) {
      const size_t k = std::find(order.begin(), order.end(), plan.inputs[i][d]) - order.begin();
      if (shapes[i][d] == sizes[k]) strides[i][k] += dim_strides[d];
    }
  }
  const int64_t summed =
      NumElementsUnchecked(absl::MakeConstSpan(sizes).subspan(plan.output.size()));
  return VisitNumeric(c.input(0).dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    T* y = c.outputs[0].data<T>();
    const int64_t outputs = c.outputs[0].num_elements();
    std::fill_n(y, outputs, T(0));
    if (summed == 0) return absl::OkStatus();
    std::vector<int64_t> index(order.size(), 0), offsets(shapes.size(), 0);
    for (int64_t o = 0; o < outputs; ++o) {
      Acc<T> sum = 0;
      for (int64_t s = 0; s < summed; ++s) {
        Acc<T> product = 1;
        for (size_t i = 0; i < shapes.size(); ++i) {
          product *= static_cast<Acc<T>>(c.input(i).data<T>()[offsets[i]]);
        }
        sum += product;
        for (int64_t k = static_cast<int64_t>(order.size()) - 1; k >= 0; --k) {
          for (size_t i = 0; i < shapes.size(); ++i) offsets[i] += strides[i][k];
          if (++index[k] < sizes[k]) break;
          for (size_t i = 0; i < shapes.size(); ++i) offsets[i] -= strides[i][k] * sizes[k];
          index[k] = 0;
        }
      }
      y[o] = static_cast<T>(sum);
    }
    return absl::OkStatus();
  });
}

}  // namespace

void RegisterEinsumOps(OpTable& t) { t["Einsum"] = OpDef{.infer = InferEinsum, .compute = Einsum}; }

}  // namespace slimserve::runtime::reference

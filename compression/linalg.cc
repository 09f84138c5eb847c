#include "compression/linalg.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace slimserve::compression {

bool CholeskyFactor(std::vector<double>& a, int64_t m) {
  for (int64_t j = 0; j < m; ++j) {
    double d = a[j * m + j];
    for (int64_t k = 0; k < j; ++k) d -= a[j * m + k] * a[j * m + k];
    if (d <= 0) return false;
    d = std::sqrt(d);
    a[j * m + j] = d;
    for (int64_t i = j + 1; i < m; ++i) {
      double v = a[i * m + j];
      for (int64_t k = 0; k < j; ++k) v -= a[i * m + k] * a[j * m + k];
      a[i * m + j] = v / d;
    }
  }
  return true;
}

void SolveUpperTransposed(const std::vector<double>& l, std::vector<double>& r, int64_t m) {
  for (int64_t i = m - 1; i >= 0; --i) {
    for (int64_t k = i + 1; k < m; ++k) r[i] -= l[k * m + i] * r[k];
    r[i] /= l[i * m + i];
  }
}

void CholeskySolve(const std::vector<double>& l, std::vector<double>& r, int64_t m) {
  for (int64_t i = 0; i < m; ++i) {  // L y = r
    for (int64_t k = 0; k < i; ++k) r[i] -= l[i * m + k] * r[k];
    r[i] /= l[i * m + i];
  }
  SolveUpperTransposed(l, r, m);  // L^T x = y
}

std::vector<double> SymmetricEigen(std::vector<double>& a, int64_t m, std::vector<double>& vectors) {
  std::vector<double> vt(m * m, 0.0);  // the eigenvectors as rows
  for (int64_t i = 0; i < m; ++i) vt[i * m + i] = 1;
  for (int sweep = 0; sweep < 50; ++sweep) {
    bool rotated = false;
    for (int64_t p = 0; p < m; ++p) {
      for (int64_t q = p + 1; q < m; ++q) {
        const double apq = a[p * m + q];
        // Off-diagonal entries below rounding of their diagonal are zero already.
        if (std::abs(apq) <= 1e-15 * std::sqrt(std::abs(a[p * m + p] * a[q * m + q])) || apq == 0) continue;
        rotated = true;
        // The rotation in the (p, q) plane that zeroes a[p][q] (Golub and Van Loan, 8.5.2).
        const double tau = (a[q * m + q] - a[p * m + p]) / (2 * apq);
        const double t = (tau >= 0 ? 1.0 : -1.0) / (std::abs(tau) + std::sqrt(1 + tau * tau));
        const double c = 1 / std::sqrt(1 + t * t), s = t * c;
        // J^T A J: rows p and q change, then columns p and q mirror them.
        const double app = a[p * m + p], aqq = a[q * m + q];
        double* rp = &a[p * m];
        double* rq = &a[q * m];
        for (int64_t k = 0; k < m; ++k) {
          const double apk = rp[k], aqk = rq[k];
          rp[k] = c * apk - s * aqk;
          rq[k] = s * apk + c * aqk;
        }
        rp[p] = app - t * apq;
        rq[q] = aqq + t * apq;
        rp[q] = rq[p] = 0;
        for (int64_t k = 0; k < m; ++k) {
          a[k * m + p] = rp[k];
          a[k * m + q] = rq[k];
        }
        double* vp = &vt[p * m];  // V J, with V's columns as vt's rows
        double* vq = &vt[q * m];
        for (int64_t k = 0; k < m; ++k) {
          const double x = vp[k], y = vq[k];
          vp[k] = c * x - s * y;
          vq[k] = s * x + c * y;
        }
      }
    }
    if (!rotated) break;
  }
  std::vector<int64_t> order(m);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int64_t i, int64_t j) { return a[i * m + i] > a[j * m + j]; });
  std::vector<double> values(m);
  vectors.assign(m * m, 0.0);
  for (int64_t j = 0; j < m; ++j) {
    values[j] = a[order[j] * m + order[j]];
    for (int64_t k = 0; k < m; ++k) vectors[k * m + j] = vt[order[j] * m + k];
  }
  return values;
}

}  // namespace slimserve::compression

// Small dense linear algebra in double precision for the compression
// passes: Cholesky factorization and solves, and the eigenvectors of a
// symmetric matrix. Matrices are row-major std::vector<double> of m x m.
#ifndef SLIMSERVE_COMPRESSION_LINALG_H_
#define SLIMSERVE_COMPRESSION_LINALG_H_

#include <cstdint>
#include <vector>

namespace slimserve::compression {

// a = L L^T (a symmetric positive definite), L written into a's lower
// triangle. False when a is not positive definite.
bool CholeskyFactor(std::vector<double>& a, int64_t m);

// Solves L L^T x = r in place, with L from CholeskyFactor().
void CholeskySolve(const std::vector<double>& l, std::vector<double>& r, int64_t m);

// Solves L^T x = r in place (back substitution), with L from CholeskyFactor().
void SolveUpperTransposed(const std::vector<double>& l, std::vector<double>& r, int64_t m);

// Eigenvalues of the symmetric matrix a (m x m), largest first, by cyclic
// Jacobi rotations; `vectors` gets the matching unit eigenvectors as the
// columns of an m x m matrix. `a` is overwritten.
std::vector<double> SymmetricEigen(std::vector<double>& a, int64_t m, std::vector<double>& vectors);

}  // namespace slimserve::compression

#endif  // SLIMSERVE_COMPRESSION_LINALG_H_

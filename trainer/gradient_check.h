// Test-only helpers for finite-difference gradient checks (gtest).
#ifndef FTB_TRAINER_GRADIENT_CHECK_H_
#define FTB_TRAINER_GRADIENT_CHECK_H_

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>

#include "common/rng.h"
#include "gtest/gtest.h"
#include "trainer/layers.h"

namespace ftb::trainer::testing {

// Uniform entries in [-scale, scale].
inline Matrix<double> RandomMatrix(Rng& rng, Eigen::Index rows, Eigen::Index cols,
                                   double scale = 1.0) {
  Matrix<double> m(rows, cols);
  for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = scale * (2 * rng.UniformDouble() - 1);
  return m;
}

// Compares analytic[i] with the central difference of `loss` in values[i]
// for every i < n: |analytic - numeric| <= 1e-7 + 1e-6 |numeric|. Restores
// the values. Stops after the first few mismatches.
template <typename LossFn>
void ExpectGradientMatches(double* values, Eigen::Index n, const double* analytic, LossFn&& loss,
                           const std::string& what, double step = 1e-5) {
  int failures = 0;
  for (Eigen::Index i = 0; i < n && failures < 5; ++i) {
    const double saved = values[i];
    values[i] = saved + step;
    const double plus = loss();
    values[i] = saved - step;
    const double minus = loss();
    values[i] = saved;
    const double numeric = (plus - minus) / (2 * step);
    const double tolerance = 1e-7 + 1e-6 * std::abs(numeric);
    if (std::abs(analytic[i] - numeric) > tolerance) {
      ++failures;
      ADD_FAILURE() << what << "[" << i << "]: analytic " << analytic[i] << ", numeric " << numeric;
    }
  }
}

}  // namespace ftb::trainer::testing

#endif  // FTB_TRAINER_GRADIENT_CHECK_H_

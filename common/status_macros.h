// Status propagation macros used across ftb. Header-only.
#ifndef FTB_COMMON_STATUS_MACROS_H_
#define FTB_COMMON_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define FTB_STATUS_CONCAT_INNER_(a, b) a##b
#define FTB_STATUS_CONCAT_(a, b) FTB_STATUS_CONCAT_INNER_(a, b)

// Returns from the enclosing function if `expr` (an absl::Status) is not OK.
#define FTB_RETURN_IF_ERROR(expr)                  \
  do {                                             \
    ::absl::Status ftb_status_ = (expr);           \
    if (!ftb_status_.ok()) return ftb_status_;     \
  } while (0)

// `lhs` = value of `rexpr` (an absl::StatusOr<T>), or returns its status.
#define FTB_ASSIGN_OR_RETURN(lhs, rexpr) \
  FTB_ASSIGN_OR_RETURN_IMPL_(FTB_STATUS_CONCAT_(ftb_statusor_, __LINE__), lhs, rexpr)

#define FTB_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                               \
  if (!statusor.ok()) return statusor.status();          \
  lhs = *std::move(statusor)

#endif  // FTB_COMMON_STATUS_MACROS_H_

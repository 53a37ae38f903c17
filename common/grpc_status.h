// Conversion between absl::Status and grpc::Status: the one place where the
// two code spaces meet. Canonical codes map one to one, messages are kept.
#ifndef FTB_COMMON_GRPC_STATUS_H_
#define FTB_COMMON_GRPC_STATUS_H_

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace ftb {

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace ftb

#endif  // FTB_COMMON_GRPC_STATUS_H_

// The ftb subcommands, behind flag parsing (cli/main.cc holds CLI11 and
// nothing else). Each returns the process exit code and writes its output
// to `out`; errors are returned as a status whose message main prints as
// one line.
#ifndef FTB_CLI_COMMANDS_H_
#define FTB_CLI_COMMANDS_H_

#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "storage/state_store.h"

namespace ftb::cli {

// The campaign embedded in the binary (campaigns/default.yaml at build time)
// and the name errors in it are reported under.
std::string_view EmbeddedDefaultSpec();
inline constexpr std::string_view kEmbeddedDefaultName = "<embedded>/campaigns/default.yaml";

struct PlanOptions {
  // Spec file; empty = the embedded default.
  std::string spec_path;
  // Cells to list; 0 = all.
  uint64_t limit = 50;
  bool json = false;
};
absl::Status Plan(const PlanOptions& options, std::ostream& out);

struct DatasetRef {
  std::string name;
  // FineTuneBench checkout (for the published datasets); defaults to
  // $FINETUNEBENCH_DIR.
  std::string path;
  uint32_t size = 0;  // 0 = the generator's default
  uint64_t seed = 0;
};
absl::Status DatasetsList(const std::string& path, std::ostream& out);
absl::Status DatasetsShow(const DatasetRef& ref, const std::string& type, uint64_t limit,
                          std::ostream& out);
// `set` is "training", "prior" or a question type name.
absl::Status DatasetsExport(const DatasetRef& ref, const std::string& format,
                            const std::string& set, const std::string& out_path,
                            std::ostream& out);

}  // namespace ftb::cli

#endif  // FTB_CLI_COMMANDS_H_

namespace ftb::cli {

// `ftb coordinator`: serves until SIGTERM/SIGINT, then shuts down cleanly.
struct CoordinatorCommandOptions {
  std::string listen = "127.0.0.1:7070";
  std::string state_dir = ".ftb-state";
  std::string metrics_listen;  // empty = no /metrics
  std::string pricing_dir;     // empty = the built-in price tables
  // Security and limits (coordinator/auth.h). The token comes from
  // auth_token_file, else $FTB_AUTH_TOKEN, else none is required.
  std::string tls_cert_file, tls_key_file, tls_client_ca_file;
  std::string auth_token_file;
  // Workers' own token (coordinator/auth.h): with it, auth_token_file's
  // token is the user token only. Empty = single-token mode.
  std::string worker_token_file;
  bool allow_anonymous_read = false;
  // /metrics needs HTTP Basic auth with the user token as password.
  bool metrics_require_token = false;
  uint64_t max_campaign_cells = 5'000'000;
  int max_message_bytes = 64 << 20;
  double max_submissions_per_minute = 60;
};
absl::Status RunCoordinator(const CoordinatorCommandOptions& options, std::ostream& out);

// Client commands against a running coordinator.
struct ClientOptions {
  std::string coordinator = "127.0.0.1:7070";
  double deadline_seconds = 30;
  // TLS (--tls-ca; --tls-cert/--tls-key for mutual TLS) and the token
  // (--auth-token-file, else $FTB_AUTH_TOKEN); common/grpc_security.h.
  std::string tls_ca_file, tls_cert_file, tls_key_file, auth_token_file;
};
absl::Status Submit(const ClientOptions& client, const std::string& spec_path,
                    const std::string& request_id, std::ostream& out);
// One cell whose training run or judge task failed, with why.
struct FailedCell {
  std::string cell_id, dataset, model, backend;
  uint32_t epochs = 0;
  uint32_t attempts = 0;  // of the failed task
  std::string last_error;  // "no error recorded" when none was
};
// The failed cells of campaign `campaign_id` in `store`, in plan order.
absl::StatusOr<std::vector<FailedCell>> FailedCells(const storage::StateStore& store,
                                                    const std::string& campaign_id);
// "  failed: <cell> (<dataset> / <model> @ <epochs> epochs) after N attempt(s): <error>"
// lines, at most `limit` then "... and K more".
std::string FailureLines(const std::vector<FailedCell>& cells, size_t limit = 20);

// `ftb run` ended with failed cells (reports written): exit code 2 (README
// "Exit codes"). Marked by a status payload.
inline constexpr int kExitCampaignFailed = 2;
absl::Status CampaignFailedError(std::string_view message);
bool IsCampaignFailed(const absl::Status& status);

// Empty id: every campaign, one line each. With an id, a campaign with
// failed cells also lists each one's last error and attempts (text) or adds
// "failures": [{cell_id, dataset, model, backend, epochs, attempts,
// last_error}] to the JSON object.
absl::Status Status(const ClientOptions& client, const std::string& campaign_id, bool json,
                    std::ostream& out);
absl::Status Watch(const ClientOptions& client, const std::string& campaign_id,
                   std::ostream& out);
absl::Status Cancel(const ClientOptions& client, const std::string& campaign_id,
                    std::ostream& out);
// Negative = leave unchanged; 0 = remove the limit.
absl::Status Budget(const ClientOptions& client, const std::string& campaign_id, double usd,
                    double per_cell_usd, std::ostream& out);
// `ftb delete`: removes an ended campaign's records from the coordinator.
// With `keep_report_dir`, first writes report.{md,json,csv,html} there
// (from ExportCampaign, as `ftb report --coordinator`); nothing is deleted
// if that fails. kFailedPrecondition for a running or paused campaign.
absl::Status Delete(const ClientOptions& client, const std::string& campaign_id,
                    const std::string& keep_report_dir, std::ostream& out);

}  // namespace ftb::cli

namespace ftb::cli {

// `ftb worker`: leases and runs tasks until SIGTERM (drain) or max_tasks.
struct WorkerCommandOptions {
  std::string coordinator = "127.0.0.1:7070";
  std::string role = "tune";
  std::vector<std::string> backends;
  int slots = 1;
  std::string worker_id;
  uint64_t max_tasks = 0;
  std::string metrics_listen;  // empty = no /metrics
  // KEY=VALUE settings for the backends (e.g. artifact_dir=/shared/ftb).
  std::vector<std::string> backend_opts;
  // As ClientOptions.
  std::string tls_ca_file, tls_cert_file, tls_key_file, auth_token_file;
};
absl::Status RunWorker(const WorkerCommandOptions& options);

}  // namespace ftb::cli

namespace ftb::cli {

// `ftb report`: renders a stored campaign offline from a state directory.
struct ReportOptions {
  // Online (--coordinator): read the campaign from a running coordinator
  // (ExportCampaign) instead of the state directory.
  bool online = false;
  ClientOptions client;
  std::string state_dir = ".ftb-state";
  std::string campaign_id;  // empty = the newest campaign
  std::string format = "md";  // md, csv, json, html
  std::string out_path;       // empty or "-" = stdout
};
absl::Status Report(const ReportOptions& options, std::ostream& out);

// Copies a campaign's committed records from a running coordinator into
// `into` (ExportCampaign). An empty id means the newest campaign; the id
// used is returned.
absl::StatusOr<std::string> ExportCampaign(const ClientOptions& client,
                                           const std::string& campaign_id,
                                           storage::StateStore& into);

// `ftb run`: coordinator, tuning and judge workers in this process on
// loopback; submits the campaign (resuming it if the state already has it),
// shows progress, writes report.{md,json,csv,html} into out_dir.
struct RunOptions {
  std::string spec_path;  // empty = the embedded default
  std::string state_dir = ".ftb-state";
  std::string out_dir = "ftb-report";
  int tune_slots = 0;  // 0 = number of cores
};
absl::Status Run(const RunOptions& options, std::ostream& out);

}  // namespace ftb::cli

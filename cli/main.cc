// ftb: flag parsing and dispatch only. CLI11 is included here and nowhere
// else (it is slow to compile).
#include <iostream>

#include "absl/synchronization/mutex.h"
#include "CLI/CLI.hpp"
#include "cli/commands.h"
#include "judge/judge_backend.h"
#include "spec/spec.h"
#include "workers/backend.h"

namespace {

int Finish(const absl::Status& status) {
  if (status.ok()) return 0;
  std::cerr << "ftb: " << status.message() << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  // Debian's abseil checks every Mutex acquisition for lock-order cycles (a
  // debug aid that costs the coordinator's hot path); tests keep it on.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  // Graders run as backends of judge workers; the worker runtime itself knows
  // no backend by name.
  if (absl::Status s = ftb::judge::RegisterJudgeBackends(ftb::workers::BackendRegistry::Global());
      !s.ok()) {
    std::cerr << "ftb: " << s.message() << "\n";
    return 1;
  }
  // Every spec this process parses (plan, run, a coordinator's submit) has
  // its models' options checked by their backends before anything runs.
  ftb::spec::SetModelOptionsValidator(
      [](std::string_view backend, const google::protobuf::Struct& options) {
        return ftb::workers::BackendRegistry::Global().ValidateOptions(backend, options);
      });
  CLI::App app{"ftb: FineTuneBench knowledge-infusion sweeps (coordinator, workers, reports)"};
  app.set_version_flag("--version", "ftb 0.1.0");
  app.require_subcommand(1);
  int exit_code = 0;

  ftb::cli::PlanOptions plan;
  auto* plan_cmd = app.add_subcommand(
      "plan", "Validate a campaign spec, expand its grid and print the cells");
  plan_cmd->add_option("spec", plan.spec_path, "Campaign YAML (default: the embedded default)");
  plan_cmd->add_option("--limit", plan.limit, "Cells to list (0 = all)")->capture_default_str();
  plan_cmd->add_flag("--json", plan.json, "Print the plan as JSON");
  plan_cmd->callback([&] { exit_code = Finish(ftb::cli::Plan(plan, std::cout)); });

  auto* datasets = app.add_subcommand("datasets", "Inspect and export datasets");
  datasets->require_subcommand(1);
  std::string list_path;
  auto* list = datasets->add_subcommand("list", "List built-in and FineTuneBench datasets");
  list->add_option("--path", list_path, "FineTuneBench checkout (default $FINETUNEBENCH_DIR)");
  list->callback([&] { exit_code = Finish(ftb::cli::DatasetsList(list_path, std::cout)); });

  ftb::cli::DatasetRef ref;
  auto add_ref = [&ref](CLI::App* cmd) {
    cmd->add_option("name", ref.name, "Dataset: people, updates, latest_news, ...")->required();
    cmd->add_option("--path", ref.path, "FineTuneBench checkout (default $FINETUNEBENCH_DIR)");
    cmd->add_option("--size", ref.size, "Built-in: number of entities (default per dataset)");
    cmd->add_option("--seed", ref.seed, "Built-in: generator seed")->capture_default_str();
  };
  std::string show_type;
  uint64_t show_limit = 5;
  auto* show = datasets->add_subcommand("show", "Summarise a dataset and print sample items");
  add_ref(show);
  show->add_option("--type", show_type, "Items to print: training, prior or a question type");
  show->add_option("--limit", show_limit, "Items to print")->capture_default_str();
  show->callback(
      [&] { exit_code = Finish(ftb::cli::DatasetsShow(ref, show_type, show_limit, std::cout)); });

  std::string format, set = "training", out_path;
  auto* exp = datasets->add_subcommand("export", "Write a set as a fine-tuning JSONL file");
  add_ref(exp);
  exp->add_option("--format", format, "openai (chat JSONL) or vertex")->required();
  exp->add_option("--set", set, "training, prior or a question type")->capture_default_str();
  exp->add_option("--out", out_path, "Output file (default stdout)");
  exp->callback([&] {
    exit_code = Finish(ftb::cli::DatasetsExport(ref, format, set, out_path, std::cout));
  });

  ftb::cli::CoordinatorCommandOptions coord;
  auto* coord_cmd = app.add_subcommand("coordinator", "Run the coordinator (gRPC server)");
  coord_cmd->add_option("--listen", coord.listen, "HOST:PORT to serve on")->capture_default_str();
  coord_cmd->add_option("--state", coord.state_dir, "State directory (RocksDB)")
      ->capture_default_str();
  coord_cmd->add_option("--metrics-listen", coord.metrics_listen,
                        "HOST:PORT serving Prometheus /metrics and /healthz (default: off)");
  coord_cmd->add_option("--pricing", coord.pricing_dir,
                        "Directory of price tables (default: the built-in pricing/*.yaml)");
  coord_cmd->add_option("--tls-cert", coord.tls_cert_file,
                        "PEM certificate chain: serve TLS (with --tls-key)");
  coord_cmd->add_option("--tls-key", coord.tls_key_file, "PEM private key of --tls-cert");
  coord_cmd->add_option("--tls-client-ca", coord.tls_client_ca_file,
                        "PEM CA bundle: require client certificates it signed (mutual TLS)");
  coord_cmd->add_option("--auth-token-file", coord.auth_token_file,
                        "File holding the token clients must send (default: $FTB_AUTH_TOKEN; "
                        "neither = no token required)");
  coord_cmd->add_option("--worker-token-file", coord.worker_token_file,
                        "File holding the workers' own token: workers must send it and it "
                        "admits only worker RPCs, while --auth-token-file's token admits only "
                        "user RPCs (default: one token for both)");
  coord_cmd->add_flag("--allow-anonymous-read", coord.allow_anonymous_read,
                      "Let the reads (status, watch, report) through without a token");
  coord_cmd->add_flag("--metrics-require-token", coord.metrics_require_token,
                      "Serve /metrics only with HTTP Basic auth whose password is the "
                      "--auth-token-file token (it names campaigns and models)");
  coord_cmd->add_option("--max-campaign-cells", coord.max_campaign_cells,
                        "Largest campaign accepted, in cells")
      ->capture_default_str();
  coord_cmd->add_option("--max-message-bytes", coord.max_message_bytes,
                        "Largest request accepted, in bytes")
      ->capture_default_str();
  coord_cmd->add_option("--max-submissions-per-minute", coord.max_submissions_per_minute,
                        "Campaign submissions per client per minute, in bursts of as many "
                        "(0 = unlimited)")
      ->capture_default_str();
  coord_cmd->callback(
      [&] { exit_code = Finish(ftb::cli::RunCoordinator(coord, std::cout)); });

  // TLS and token of every client of the coordinator (common/grpc_security.h).
  auto add_client_security = [](CLI::App* cmd, std::string& ca, std::string& cert,
                                std::string& key, std::string& token_file) {
    cmd->add_option("--tls-ca", ca, "PEM CA bundle that signed the coordinator's certificate "
                                    "(connect with TLS)");
    cmd->add_option("--tls-cert", cert, "PEM client certificate, for mutual TLS (with --tls-key)");
    cmd->add_option("--tls-key", key, "PEM private key of --tls-cert");
    cmd->add_option("--auth-token-file", token_file,
                    "File holding the coordinator's token (default: $FTB_AUTH_TOKEN)");
  };
  ftb::cli::ClientOptions client;
  auto add_client = [&client, &add_client_security](CLI::App* cmd) {
    cmd->add_option("--coordinator", client.coordinator, "Coordinator HOST:PORT")
        ->envname("FTB_COORDINATOR")
        ->capture_default_str();
    cmd->add_option("--deadline", client.deadline_seconds, "RPC deadline in seconds")
        ->capture_default_str();
    add_client_security(cmd, client.tls_ca_file, client.tls_cert_file, client.tls_key_file,
                        client.auth_token_file);
  };
  std::string submit_spec, request_id;
  auto* submit = app.add_subcommand("submit", "Submit a campaign; prints its id");
  submit->add_option("spec", submit_spec, "Campaign YAML")->required();
  submit->add_option("--request-id", request_id,
                     "Idempotency key: resubmitting with it returns the same campaign");
  add_client(submit);
  submit->callback([&] {
    exit_code = Finish(ftb::cli::Submit(client, submit_spec, request_id, std::cout));
  });

  std::string campaign_id;
  bool status_json = false;
  auto* status = app.add_subcommand("status", "Show one campaign, or all");
  status->add_option("id", campaign_id, "Campaign id (default: all)");
  status->add_flag("--json", status_json, "Print JSON");
  add_client(status);
  status->callback([&] {
    exit_code = Finish(ftb::cli::Status(client, campaign_id, status_json, std::cout));
  });

  auto* watch = app.add_subcommand("watch", "Follow a campaign's progress until it ends");
  watch->add_option("id", campaign_id, "Campaign id")->required();
  add_client(watch);
  watch->callback([&] { exit_code = Finish(ftb::cli::Watch(client, campaign_id, std::cout)); });

  auto* cancel = app.add_subcommand("cancel", "Cancel a campaign");
  cancel->add_option("id", campaign_id, "Campaign id")->required();
  add_client(cancel);
  cancel->callback([&] { exit_code = Finish(ftb::cli::Cancel(client, campaign_id, std::cout)); });

  double budget_usd = -1, budget_per_cell = -1;
  auto* budget = app.add_subcommand("budget", "Change a campaign's budget (resumes it if paused)");
  budget->add_option("id", campaign_id, "Campaign id")->required();
  budget->add_option("--usd", budget_usd, "Total dollars (0 = no limit)");
  budget->add_option("--per-cell-usd", budget_per_cell, "Dollars per cell (0 = no limit)");
  add_client(budget);
  budget->callback([&] {
    exit_code =
        Finish(ftb::cli::Budget(client, campaign_id, budget_usd, budget_per_cell, std::cout));
  });

  std::string keep_report_dir;
  auto* delete_cmd = app.add_subcommand(
      "delete", "Delete an ended campaign's records from the coordinator");
  delete_cmd->add_option("id", campaign_id, "Campaign id")->required();
  delete_cmd->add_option("--keep-report", keep_report_dir,
                         "Write report.{md,json,csv,html} into this directory first");
  add_client(delete_cmd);
  delete_cmd->callback([&] {
    exit_code = Finish(ftb::cli::Delete(client, campaign_id, keep_report_dir, std::cout));
  });

  ftb::cli::WorkerCommandOptions worker;
  auto* worker_cmd = app.add_subcommand("worker", "Run a tuning or judge worker");
  worker_cmd->add_option("--coordinator", worker.coordinator, "Coordinator HOST:PORT")
      ->envname("FTB_COORDINATOR")
      ->capture_default_str();
  worker_cmd->add_option("--role", worker.role, "tune or judge")->capture_default_str();
  worker_cmd->add_option("--backends", worker.backends,
                         "Backends (tune) or graders (judge) to offer, comma-separated")
      ->delimiter(',');
  worker_cmd->add_option("--slots", worker.slots, "Tasks run at once")->capture_default_str();
  worker_cmd->add_option("--worker-id", worker.worker_id, "Stable id (default host:pid:random)");
  worker_cmd->add_option("--max-tasks", worker.max_tasks, "Exit after this many tasks (0 = never)")
      ->capture_default_str();
  worker_cmd->add_option("--metrics-listen", worker.metrics_listen,
                         "HOST:PORT serving Prometheus /metrics and /healthz (default: off)");
  worker_cmd->add_option("--backend-opt", worker.backend_opts,
                         "KEY=VALUE for the backends, repeatable (e.g. artifact_dir=/shared/ftb)");
  add_client_security(worker_cmd, worker.tls_ca_file, worker.tls_cert_file, worker.tls_key_file,
                      worker.auth_token_file);
  worker_cmd->callback([&] { exit_code = Finish(ftb::cli::RunWorker(worker)); });

  ftb::cli::RunOptions run;
  auto* run_cmd = app.add_subcommand(
      "run", "Run a campaign on this machine (coordinator and workers in-process) and report");
  run_cmd->add_option("--spec", run.spec_path, "Campaign YAML (default: the embedded default)");
  run_cmd->add_option("--state", run.state_dir, "State directory; rerun with it to resume")
      ->capture_default_str();
  run_cmd->add_option("--out", run.out_dir, "Where report.{md,json,csv,html} go")
      ->capture_default_str();
  run_cmd->add_option("--slots", run.tune_slots, "Concurrent tuning tasks (0 = cores)")
      ->capture_default_str();
  run_cmd->callback([&] {
    const absl::Status s = ftb::cli::Run(run, std::cout);
    exit_code = Finish(s);
    if (ftb::cli::IsCampaignFailed(s)) exit_code = ftb::cli::kExitCampaignFailed;
  });

  ftb::cli::ReportOptions report;
  auto* report_cmd = app.add_subcommand("report", "Render a stored campaign's results");
  report_cmd->add_option("--state", report.state_dir, "State directory")->capture_default_str();
  report_cmd->add_option("--campaign", report.campaign_id, "Campaign id (default: newest)");
  report_cmd->add_option("--format", report.format, "md, csv, json or html")
      ->capture_default_str();
  report_cmd->add_option("--out", report.out_path, "Output file (default stdout)");
  add_client(report_cmd);
  report_cmd->get_option("--coordinator")
      ->description("Read from a running coordinator instead of --state");
  report_cmd->callback([&] {
    // --state on the command line wins over a coordinator from the environment.
    report.online = report_cmd->get_option("--coordinator")->count() > 0 &&
                    report_cmd->get_option("--state")->count() == 0;
    report.client = client;
    exit_code = Finish(ftb::cli::Report(report, std::cout));
  });

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return exit_code;
}

// ftb coordinator / submit / status / watch / cancel.
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <chrono>
#include <iostream>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "cli/commands.h"
#include "common/grpc_security.h"
#include "common/grpc_status.h"
#include "common/status_macros.h"
#include "coordinator/limits.h"
#include "coordinator/service.h"
#include "cost/price_table.h"
#include "ftb/v1/coordinator.grpc.pb.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/grpcpp.h"
#include "nlohmann/json.hpp"
#include "spec/spec.h"
#include "storage/memory_state_store.h"

namespace ftb::cli {
namespace {

std::atomic<int> g_signal{0};
void OnSignal(int sig) { g_signal = sig; }

// A stub over a channel with the client's TLS and token. Errors: unreadable
// or inconsistent --tls-* / --auth-token-file (common/grpc_security.h).
absl::StatusOr<std::unique_ptr<v1::Coordinator::Stub>> Connect(const ClientOptions& client) {
  ChannelSecurity security;
  security.tls_ca_file = client.tls_ca_file;
  security.tls_cert_file = client.tls_cert_file;
  security.tls_key_file = client.tls_key_file;
  FTB_ASSIGN_OR_RETURN(security.auth_token, ResolveAuthToken(client.auth_token_file));
  // Replies as large as the coordinator accepts requests (coordinator/
  // limits.h): whatever it stored, a client can read back.
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(coordinator::limits::kMaxMessageBytes);
  FTB_ASSIGN_OR_RETURN(std::shared_ptr<grpc::Channel> channel,
                       CreateSecureChannel(client.coordinator, security, args));
  return v1::Coordinator::NewStub(channel);
}


void SetDeadline(grpc::ClientContext* ctx, const ClientOptions& client) {
  ctx->set_deadline(std::chrono::system_clock::now() +
                    std::chrono::milliseconds(static_cast<int64_t>(client.deadline_seconds * 1000)));
}

absl::Status Rpc(const ClientOptions& client, const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  absl::Status s = FromGrpcStatus(status);
  if (s.code() == absl::StatusCode::kUnavailable ||
      s.code() == absl::StatusCode::kDeadlineExceeded) {
    return absl::Status(s.code(), absl::StrCat("coordinator ", client.coordinator,
                                               " unreachable: ", s.message()));
  }
  return s;
}

// Every campaign, page by page (ListCampaigns pages hold at most
// limits::kMaxPageSize), in submission order.
absl::StatusOr<std::vector<v1::CampaignProgress>> ListAll(v1::Coordinator::Stub& stub,
                                                          const ClientOptions& client) {
  std::vector<v1::CampaignProgress> all;
  v1::ListCampaignsRequest request;
  request.set_page_size(coordinator::limits::kMaxPageSize);
  while (true) {
    grpc::ClientContext ctx;
    SetDeadline(&ctx, client);
    v1::ListCampaignsResponse page;
    FTB_RETURN_IF_ERROR(Rpc(client, stub.ListCampaigns(&ctx, request, &page)));
    for (v1::CampaignProgress& p : *page.mutable_campaigns()) all.push_back(std::move(p));
    if (page.next_page_token().empty()) return all;
    request.set_page_token(page.next_page_token());
  }
}

std::string StateName(v1::CampaignState s) {
  std::string name = v1::CampaignState_Name(s);
  return absl::AsciiStrToLower(name.substr(std::string("CAMPAIGN_STATE_").size()));
}

std::string ProgressLine(const v1::CampaignProgress& p) {
  double pct = p.cells_total() ? 100.0 * (p.cells_done() + p.cells_failed()) / p.cells_total() : 0;
  std::string line = absl::StrFormat(
      "%s %-12s %-14s cells %d/%d done (%.1f%%), %d failed; tasks %d pending %d running; "
      "%d attempts",
      p.campaign_id(), p.name(), StateName(p.state()), p.cells_done(), p.cells_total(), pct,
      p.cells_failed(), p.tasks_pending(), p.tasks_leased(), p.attempts());
  if (p.cost_usd() > 0 || p.estimated_total_usd() > 0) {
    absl::StrAppend(&line, absl::StrFormat("; $%.2f spent of ~$%.2f estimated", p.cost_usd(),
                                           p.estimated_total_usd()));
    if (p.budget().has_usd()) absl::StrAppend(&line, absl::StrFormat(", budget $%.2f", p.budget().usd()));
  }
  if (!p.status_message().empty()) absl::StrAppend(&line, " — ", p.status_message());
  return line;
}

}  // namespace

absl::Status RunCoordinator(const CoordinatorCommandOptions& options, std::ostream& out) {
  coordinator::CoordinatorOptions o;
  o.listen = options.listen;
  o.state_dir = options.state_dir;
  o.metrics_listen = options.metrics_listen;
  o.max_cells = options.max_campaign_cells;
  o.max_receive_message_bytes = options.max_message_bytes;
  o.security.tls_cert_file = options.tls_cert_file;
  o.security.tls_key_file = options.tls_key_file;
  o.security.tls_client_ca_file = options.tls_client_ca_file;
  o.security.allow_anonymous_read = options.allow_anonymous_read;
  o.metrics_require_token = options.metrics_require_token;
  if (!options.worker_token_file.empty()) {
    FTB_ASSIGN_OR_RETURN(o.security.worker_token,
                         ReadSecretFile(options.worker_token_file, "--worker-token-file"));
    while (!o.security.worker_token.empty() &&
           absl::ascii_isspace(static_cast<unsigned char>(o.security.worker_token.back()))) {
      o.security.worker_token.pop_back();
    }
    if (o.security.worker_token.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--worker-token-file ", options.worker_token_file, ": empty"));
    }
  }
  o.security.max_submissions_per_minute = options.max_submissions_per_minute;
  FTB_ASSIGN_OR_RETURN(o.security.auth_token, ResolveAuthToken(options.auth_token_file));
  std::unique_ptr<cost::PriceTable> prices;
  if (!options.pricing_dir.empty()) {
    FTB_ASSIGN_OR_RETURN(cost::PriceTable loaded, cost::PriceTable::LoadDirectory(options.pricing_dir));
    prices = std::make_unique<cost::PriceTable>(std::move(loaded));
    o.prices = prices.get();
  }
  FTB_ASSIGN_OR_RETURN(auto server, coordinator::CoordinatorServer::Start(o));
  out << "ftb coordinator listening on " << server->address() << " (state " << options.state_dir
      << ", recovered in " << absl::StrFormat("%.3f", server->recovery_seconds()) << " s)";
  if (server->metrics_port()) out << "; metrics on port " << server->metrics_port();
  out << "; " << (o.security.tls_cert_file.empty() ? "plaintext"
                  : o.security.tls_client_ca_file.empty() ? "TLS"
                                                           : "mutual TLS")
      << (o.security.auth_token.empty()      ? ", no token required"
          : o.security.worker_token.empty() ? ", token required (one token for users and workers)"
                                            : ", user and worker tokens required")
      << (!o.security.auth_token.empty() && o.security.allow_anonymous_read
              ? " (reads anonymous)" : "");
  out << std::endl;
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);
  // Runs until a signal, or until the state store fails: then health is
  // already NOT_SERVING, committed state stays exportable (ExportCampaign)
  // for a drain period, and the process
  // exits non-zero so its supervisor restarts it (docs/storage-faults.md).
  absl::Status store_failure;
  while (g_signal == 0 && store_failure.ok()) {
    store_failure = server->WaitForStoreFailure(absl::Milliseconds(50));
  }
  if (!store_failure.ok()) {
    std::cerr << "ftb coordinator: state store failed: " << store_failure.message()
              << "; health is NOT_SERVING, committed state stays exportable for another "
              << o.store_failure_drain_seconds << " s, then exiting with status 1 "
              << "(restart to recover from the committed state)" << std::endl;
    auto drain_end = std::chrono::steady_clock::now() +
                     std::chrono::duration<double>(o.store_failure_drain_seconds);
    while (g_signal == 0 && std::chrono::steady_clock::now() < drain_end) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    server->Shutdown();
    return absl::Status(store_failure.code(),
                        absl::StrCat("coordinator stopped: state store failed: ",
                                     store_failure.message()));
  }
  out << "ftb coordinator: signal " << g_signal.load() << ", shutting down" << std::endl;
  server->Shutdown();
  return absl::OkStatus();
}

absl::StatusOr<std::string> ExportCampaign(const ClientOptions& client,
                                           const std::string& campaign_id,
                                           storage::StateStore& into) {
  FTB_ASSIGN_OR_RETURN(auto stub, Connect(client));
  std::string id = campaign_id;
  if (id.empty()) {
    FTB_ASSIGN_OR_RETURN(std::vector<v1::CampaignProgress> list, ListAll(*stub, client));
    if (list.empty()) {
      return absl::NotFoundError(absl::StrCat("no campaigns on ", client.coordinator));
    }
    id = list.back().campaign_id();  // submission order
  }
  // The whole export shares one deadline, scaled for large campaigns.
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::milliseconds(static_cast<int64_t>(client.deadline_seconds * 10'000)));
  v1::ExportCampaignRequest request;
  request.set_campaign_id(id);
  std::unique_ptr<grpc::ClientReader<v1::ExportCampaignPage>> reader =
      stub->ExportCampaign(&ctx, request);
  v1::ExportCampaignPage page;
  size_t records = 0;
  while (reader->Read(&page)) {
    if (page.schema_version() != 1) {
      return absl::FailedPreconditionError(absl::StrCat(
          "coordinator ", client.coordinator, " exports state schema version ",
          page.schema_version(), "; this ftb reads version 1 (upgrade ftb)"));
    }
    storage::WriteBatch batch;
    for (const v1::StateRecord& r : page.records()) batch.Put(r.key(), r.value());
    records += page.records_size();
    FTB_RETURN_IF_ERROR(into.Write(batch));
  }
  FTB_RETURN_IF_ERROR(Rpc(client, reader->Finish()));
  if (records == 0) return absl::DataLossError(absl::StrCat("empty export of campaign ", id));
  return id;
}

absl::Status Submit(const ClientOptions& client, const std::string& spec_path,
                    const std::string& request_id, std::ostream& out) {
  std::ifstream f(spec_path, std::ios::binary);
  if (!f) return absl::NotFoundError(absl::StrCat(spec_path, ": cannot read the spec"));
  std::stringstream text;
  text << f.rdbuf();
  // Checked here first (errors name the local file), which also collects
  // the ${NAME} values to send: the coordinator expands nothing from its own
  // environment.
  std::map<std::string, std::string> used;
  FTB_RETURN_IF_ERROR(
      spec::ParseCampaignSpec(text.str(), spec_path, spec::RecordingEnv(spec::ProcessEnv(), &used))
          .status());
  v1::SubmitCampaignRequest request;
  request.set_spec_yaml(text.str());
  request.set_spec_filename(spec_path);
  request.set_request_id(request_id);
  request.mutable_env()->insert(used.begin(), used.end());
  v1::SubmitCampaignResponse response;
  grpc::ClientContext ctx;
  SetDeadline(&ctx, client);
  FTB_ASSIGN_OR_RETURN(auto stub, Connect(client));
  FTB_RETURN_IF_ERROR(Rpc(client, stub->SubmitCampaign(&ctx, request, &response)));
  out << response.campaign_id() << "\n";
  return absl::OkStatus();
}

absl::Status Status(const ClientOptions& client, const std::string& campaign_id, bool json,
                    std::ostream& out) {
  FTB_ASSIGN_OR_RETURN(auto stub, Connect(client));
  grpc::ClientContext ctx;
  SetDeadline(&ctx, client);
  google::protobuf::util::JsonPrintOptions jopts;
  jopts.add_whitespace = true;
  jopts.preserve_proto_field_names = true;
  if (campaign_id.empty()) {
    v1::ListCampaignsResponse response;
    FTB_ASSIGN_OR_RETURN(std::vector<v1::CampaignProgress> all, ListAll(*stub, client));
    for (v1::CampaignProgress& p : all) *response.add_campaigns() = std::move(p);
    if (json) {
      std::string s;
      (void)google::protobuf::util::MessageToJsonString(response, &s, jopts);
      out << s << "\n";
      return absl::OkStatus();
    }
    if (response.campaigns().empty()) out << "no campaigns\n";
    for (const auto& p : response.campaigns()) out << ProgressLine(p) << "\n";
    return absl::OkStatus();
  }
  v1::GetCampaignRequest request;
  request.set_campaign_id(campaign_id);
  v1::GetCampaignResponse response;
  FTB_RETURN_IF_ERROR(Rpc(client, stub->GetCampaign(&ctx, request, &response)));
  const v1::CampaignProgress& p = response.progress();
  // Why cells failed: the failed tasks' last errors and attempts, from the
  // campaign's committed state (ExportCampaign).
  std::vector<FailedCell> failed;
  if (p.cells_failed() > 0 || p.tasks_failed() > 0 || p.state() == v1::CAMPAIGN_STATE_FAILED) {
    storage::MemoryStateStore exported;
    FTB_RETURN_IF_ERROR(ExportCampaign(client, campaign_id, exported).status());
    FTB_ASSIGN_OR_RETURN(failed, FailedCells(exported, campaign_id));
  }
  if (json) {
    std::string s;
    (void)google::protobuf::util::MessageToJsonString(p, &s, jopts);
    nlohmann::ordered_json j = nlohmann::ordered_json::parse(s);
    nlohmann::ordered_json failures = nlohmann::ordered_json::array();
    for (const FailedCell& f : failed) {
      failures.push_back({{"cell_id", f.cell_id},
                          {"dataset", f.dataset},
                          {"model", f.model},
                          {"backend", f.backend},
                          {"epochs", f.epochs},
                          {"attempts", f.attempts},
                          {"last_error", f.last_error}});
    }
    j["failures"] = std::move(failures);
    out << j.dump(1) << "\n";
    return absl::OkStatus();
  }
  out << ProgressLine(p) << "\n" << FailureLines(failed);
  return absl::OkStatus();
}

absl::Status Watch(const ClientOptions& client, const std::string& campaign_id,
                   std::ostream& out) {
  FTB_ASSIGN_OR_RETURN(auto stub, Connect(client));
  grpc::ClientContext ctx;  // no deadline: a watch lasts as long as the campaign
  v1::WatchCampaignRequest request;
  request.set_campaign_id(campaign_id);
  auto reader = stub->WatchCampaign(&ctx, request);
  const bool tty = isatty(STDOUT_FILENO) && &out == &std::cout;
  v1::CampaignEvent event;
  while (reader->Read(&event)) {
    std::string line = ProgressLine(event.progress());
    if (!event.message().empty() && !tty) absl::StrAppend(&line, "  [", event.message(), "]");
    if (tty) {
      out << "\r\033[K" << line << std::flush;
      if (!event.message().empty()) out << "\n  " << event.message() << "\n";
    } else {
      out << line << std::endl;
    }
  }
  if (tty) out << "\n";
  return Rpc(client, reader->Finish());
}

absl::Status Cancel(const ClientOptions& client, const std::string& campaign_id,
                    std::ostream& out) {
  v1::CancelCampaignRequest request;
  request.set_campaign_id(campaign_id);
  v1::CancelCampaignResponse response;
  grpc::ClientContext ctx;
  SetDeadline(&ctx, client);
  FTB_ASSIGN_OR_RETURN(auto stub, Connect(client));
  FTB_RETURN_IF_ERROR(Rpc(client, stub->CancelCampaign(&ctx, request, &response)));
  out << ProgressLine(response.progress()) << "\n";
  return absl::OkStatus();
}

absl::Status Budget(const ClientOptions& client, const std::string& campaign_id, double usd,
                    double per_cell_usd, std::ostream& out) {
  v1::UpdateBudgetRequest request;
  request.set_campaign_id(campaign_id);
  if (usd >= 0) request.set_usd(usd);
  if (per_cell_usd >= 0) request.set_per_cell_usd(per_cell_usd);
  if (!request.has_usd() && !request.has_per_cell_usd()) {
    return absl::InvalidArgumentError("give --usd and/or --per-cell-usd");
  }
  v1::UpdateBudgetResponse response;
  grpc::ClientContext ctx;
  SetDeadline(&ctx, client);
  FTB_ASSIGN_OR_RETURN(auto stub, Connect(client));
  FTB_RETURN_IF_ERROR(Rpc(client, stub->UpdateBudget(&ctx, request, &response)));
  out << ProgressLine(response.progress()) << "\n";
  return absl::OkStatus();
}

}  // namespace ftb::cli

namespace ftb::cli {

absl::Status Delete(const ClientOptions& client, const std::string& campaign_id,
                    const std::string& keep_report_dir, std::ostream& out) {
  FTB_ASSIGN_OR_RETURN(auto stub, Connect(client));
  {
    // Refuse early (the coordinator refuses too) so no report is written
    // for a campaign that will not be deleted.
    grpc::ClientContext ctx;
    SetDeadline(&ctx, client);
    v1::GetCampaignRequest request;
    request.set_campaign_id(campaign_id);
    v1::GetCampaignResponse response;
    FTB_RETURN_IF_ERROR(Rpc(client, stub->GetCampaign(&ctx, request, &response)));
    v1::CampaignState state = response.progress().state();
    if (state != v1::CAMPAIGN_STATE_SUCCEEDED && state != v1::CAMPAIGN_STATE_FAILED &&
        state != v1::CAMPAIGN_STATE_CANCELLED) {
      return absl::FailedPreconditionError(
          absl::StrCat("campaign ", campaign_id, " is ", StateName(state),
                       "; only a succeeded, failed or cancelled campaign can be deleted (`ftb "
                       "cancel ",
                       campaign_id, "` first)"));
    }
  }
  if (!keep_report_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(keep_report_dir, ec);
    if (ec) {
      return absl::PermissionDeniedError(
          absl::StrCat("--keep-report ", keep_report_dir, ": ", ec.message()));
    }
    for (const char* format : {"md", "json", "csv", "html"}) {
      ReportOptions report;
      report.online = true;
      report.client = client;
      report.campaign_id = campaign_id;
      report.format = format;
      report.out_path = (std::filesystem::path(keep_report_dir) /
                         absl::StrCat("report.", format)).string();
      std::ostringstream ignored;
      absl::Status s = Report(report, ignored);
      if (!s.ok()) {
        return absl::Status(s.code(), absl::StrCat("--keep-report: ", s.message(),
                                                   "; nothing was deleted"));
      }
    }
    out << "report of " << campaign_id << " written to " << keep_report_dir
        << "/report.{md,json,csv,html}\n";
  }
  grpc::ClientContext ctx;
  SetDeadline(&ctx, client);
  v1::DeleteCampaignRequest request;
  request.set_campaign_id(campaign_id);
  v1::DeleteCampaignResponse response;
  FTB_RETURN_IF_ERROR(Rpc(client, stub->DeleteCampaign(&ctx, request, &response)));
  out << "deleted " << campaign_id << " (" << response.records_deleted() << " records)\n";
  return absl::OkStatus();
}

}  // namespace ftb::cli

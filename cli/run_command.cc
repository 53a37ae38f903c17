// ftb run and ftb report.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cli/commands.h"
#include "common/hash.h"
#include "common/status_macros.h"
#include "coordinator/service.h"
#include "report/report.h"
#include "spec/spec.h"
#include "storage/memory_state_store.h"
#include "storage/rocksdb_state_store.h"
#include "workers/worker.h"

namespace ftb::cli {
namespace {

std::atomic<int> g_run_signal{0};
void OnRunSignal(int sig) { g_run_signal = sig; }

absl::Status WriteFileAtomically(const std::string& path, const std::string& content) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f << content;
    f.close();
    if (!f) return absl::UnavailableError(absl::StrCat("cannot write ", tmp));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("cannot write ", path, ": ", ec.message()));
  return absl::OkStatus();
}

absl::StatusOr<std::string> Render(const report::CampaignReport& r, const std::string& format) {
  if (format == "md") return report::RenderMarkdown(r);
  if (format == "json") return report::RenderJson(r);
  if (format == "csv") return report::RenderCsv(r);
  if (format == "html") return report::RenderHtml(r);
  return absl::InvalidArgumentError(
      absl::StrCat("--format: expected md, csv, json or html, got \"", format, "\""));
}

}  // namespace

absl::StatusOr<std::vector<FailedCell>> FailedCells(const storage::StateStore& store,
                                                    const std::string& campaign_id) {
  FTB_ASSIGN_OR_RETURN(report::CampaignReport r, report::LoadCampaignReport(store, campaign_id));
  std::vector<FailedCell> out;
  for (const report::CellReport& c : r.cells) {
    if (c.state != "failed") continue;
    FailedCell f;
    f.cell_id = c.id;
    f.dataset = c.key.dataset();
    f.model = c.key.model();
    f.backend = c.key.backend();
    f.epochs = c.key.epochs();
    f.attempts = c.attempts;
    f.last_error = c.last_error.empty() ? "no error recorded" : c.last_error;
    out.push_back(std::move(f));
  }
  return out;
}

std::string FailureLines(const std::vector<FailedCell>& cells, size_t limit) {
  std::string out;
  for (size_t i = 0; i < cells.size() && i < limit; ++i) {
    const FailedCell& f = cells[i];
    absl::StrAppend(&out, "  failed: ", f.cell_id, " (", f.dataset, " / ", f.model, " @ ",
                    f.epochs, " epochs) after ", f.attempts, " attempt(s): ", f.last_error, "\n");
  }
  if (cells.size() > limit) absl::StrAppend(&out, "  ... and ", cells.size() - limit, " more\n");
  return out;
}

constexpr char kCampaignFailedPayload[] = "type.ftb.dev/ftb.cli.CampaignFailed";

absl::Status CampaignFailedError(std::string_view message) {
  absl::Status s = absl::AbortedError(std::string(message));
  s.SetPayload(kCampaignFailedPayload, absl::Cord("1"));
  return s;
}

bool IsCampaignFailed(const absl::Status& status) {
  return status.GetPayload(kCampaignFailedPayload).has_value();
}

namespace {

absl::Status WriteReports(const storage::StateStore& store, const std::string& campaign_id,
                          const std::string& out_dir, std::ostream& out) {
  FTB_ASSIGN_OR_RETURN(report::CampaignReport r, report::LoadCampaignReport(store, campaign_id));
  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("cannot create ", out_dir, ": ", ec.message()));
  for (const char* format : {"md", "json", "csv", "html"}) {
    FTB_ASSIGN_OR_RETURN(std::string text, Render(r, format));
    FTB_RETURN_IF_ERROR(WriteFileAtomically(absl::StrCat(out_dir, "/report.", format), text));
  }
  out << "reports: " << out_dir << "/report.{md,json,csv,html}\n";
  return absl::OkStatus();
}

std::string Bar(const v1::CampaignProgress& p, double rate, bool tty) {
  uint64_t finished = p.cells_done() + p.cells_failed();
  double frac = p.cells_total() ? double(finished) / p.cells_total() : 0;
  std::string eta = "—";
  if (rate > 0 && p.cells_total() > finished) {
    eta = absl::StrFormat("%.0fs", (p.cells_total() - finished) / rate);
  }
  std::string bar;
  if (tty) {
    int width = 30, filled = static_cast<int>(frac * width);
    bar = absl::StrCat("[", std::string(filled, '#'), std::string(width - filled, '.'), "] ");
  }
  return absl::StrFormat("%s%d/%d cells (%.0f%%), %d failed, %d tasks running, %.2f cells/s, "
                         "ETA %s",
                         bar, finished, p.cells_total(), 100 * frac, p.cells_failed(),
                         p.tasks_leased(), rate, eta);
}

}  // namespace

absl::Status Report(const ReportOptions& options, std::ostream& out) {
  std::unique_ptr<storage::StateStore> store;
  std::string id = options.campaign_id;
  if (options.online) {
    store = std::make_unique<storage::MemoryStateStore>();
    FTB_ASSIGN_OR_RETURN(id, ExportCampaign(options.client, options.campaign_id, *store));
  } else {
    // Read-only: a report never replays the log into new files, deletes
    // one, or needs a writable directory (docs/storage-faults.md).
    FTB_ASSIGN_OR_RETURN(store, storage::RocksDbStateStore::OpenReadOnly(options.state_dir));
  }
  if (id.empty()) {
    FTB_ASSIGN_OR_RETURN(std::vector<std::string> ids, report::ListCampaignIds(*store));
    if (ids.empty()) {
      return absl::NotFoundError(absl::StrCat("no campaigns in ", options.state_dir));
    }
    id = ids.back();
  }
  FTB_ASSIGN_OR_RETURN(report::CampaignReport r, report::LoadCampaignReport(*store, id));
  FTB_ASSIGN_OR_RETURN(std::string text, Render(r, options.format));
  if (options.out_path.empty() || options.out_path == "-") {
    out << text;
    return absl::OkStatus();
  }
  return WriteFileAtomically(options.out_path, text);
}

absl::Status Run(const RunOptions& options, std::ostream& out) {
  // The spec, parsed here first so errors come before anything starts.
  std::string yaml, filename;
  if (options.spec_path.empty()) {
    yaml = std::string(EmbeddedDefaultSpec());
    filename = std::string(kEmbeddedDefaultName);
  } else {
    std::ifstream f(options.spec_path, std::ios::binary);
    if (!f) return absl::NotFoundError(absl::StrCat("cannot read campaign spec ", options.spec_path));
    std::stringstream s;
    s << f.rdbuf();
    yaml = s.str();
    filename = options.spec_path;
  }
  std::map<std::string, std::string> env;  // the ${NAME} values the spec uses
  FTB_ASSIGN_OR_RETURN(v1::CampaignSpec spec,
                       spec::ParseCampaignSpec(yaml, filename,
                                               spec::RecordingEnv(spec::ProcessEnv(), &env)));

  coordinator::CoordinatorOptions co;
  co.listen = "127.0.0.1:0";
  co.state_dir = options.state_dir;
  co.requeue_leased_on_recovery = true;  // our workers died with us
  FTB_ASSIGN_OR_RETURN(auto server, coordinator::CoordinatorServer::Start(co));
  auto stub = v1::Coordinator::NewStub(
      grpc::CreateChannel(server->address(), grpc::InsecureChannelCredentials()));

  // Workers on loopback (created before submitting, so a backend this binary
  // lacks fails before anything is stored): one tuning worker per backend the spec uses, one
  // judge worker per grader kind.
  std::set<std::string> backends, graders;
  for (const auto& m : spec.models()) backends.insert(m.backend());
  for (const auto& g : spec.judge().graders()) graders.insert(g.kind());
  std::vector<std::unique_ptr<workers::Worker>> pool;
  auto quiet = [](std::string_view) {};
  int slots = options.tune_slots > 0 ? options.tune_slots
                                     : std::max(1u, std::thread::hardware_concurrency());
  for (int role = 0; role < 2; ++role) {
    workers::WorkerOptions wo;
    wo.coordinator = server->address();
    wo.role = role == 0 ? v1::WORKER_ROLE_TUNE : v1::WORKER_ROLE_JUDGE;
    const auto& names = role == 0 ? backends : graders;
    if (names.empty()) continue;
    wo.backends.assign(names.begin(), names.end());
    wo.slots = role == 0 ? slots : 1;
    wo.log = quiet;
    FTB_ASSIGN_OR_RETURN(auto w, workers::Worker::Create(std::move(wo)));
    pool.push_back(std::move(w));
  }
  // The same spec text is the same campaign: a rerun resumes it.
  v1::SubmitCampaignRequest submit;
  submit.set_spec_yaml(yaml);
  submit.set_spec_filename(filename);
  submit.mutable_env()->insert(env.begin(), env.end());
  std::string identity = yaml;  // the same text and variables: the same campaign
  for (const auto& [name, value] : env) absl::StrAppend(&identity, "\n", name, "=", value);
  submit.set_request_id(absl::StrCat("ftb-run:", Sha256Hex(identity)));
  v1::SubmitCampaignResponse submitted;
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
    grpc::Status s = stub->SubmitCampaign(&ctx, submit, &submitted);
    if (!s.ok()) return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
  }
  const std::string id = submitted.campaign_id();
  out << (submitted.already_existed() ? "resuming" : "started") << " campaign " << spec.name()
      << " (" << id << "): " << submitted.cells() << " cells; state " << options.state_dir
      << std::endl;
  if (submitted.already_existed()) {
    // A campaign a provider paused (out of quota) resumes when run again:
    // running it again is how the user says the quota is back.
    v1::GetCampaignRequest get;
    get.set_campaign_id(id);
    v1::GetCampaignResponse got;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    if (stub->GetCampaign(&ctx, get, &got).ok() &&
        got.progress().state() == v1::CAMPAIGN_STATE_PAUSED_PROVIDER) {
      v1::UpdateBudgetRequest resume;
      resume.set_campaign_id(id);
      v1::UpdateBudgetResponse resumed;
      grpc::ClientContext rctx;
      rctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
      grpc::Status s = stub->UpdateBudget(&rctx, resume, &resumed);
      if (!s.ok()) return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
      out << "resumed after a provider pause (" << got.progress().status_message() << ")"
          << std::endl;
    }
  }

  std::vector<std::thread> threads;
  for (auto& w : pool) threads.emplace_back([w = w.get()] { (void)w->Run(); });

  g_run_signal = 0;
  auto old_int = std::signal(SIGINT, OnRunSignal);
  auto old_term = std::signal(SIGTERM, OnRunSignal);
  const bool tty = isatty(STDOUT_FILENO) && &out == &std::cout;
  auto started = std::chrono::steady_clock::now();
  auto last_line = started - std::chrono::seconds(10);
  uint64_t first_finished = 0;
  bool have_first = false;
  v1::CampaignProgress p;
  // A failed state store ends the run too (docs/storage-faults.md).
  absl::Status store_failure;
  while (g_run_signal == 0 &&
         (store_failure = server->WaitForStoreFailure(absl::ZeroDuration())).ok()) {
    v1::GetCampaignRequest get;
    get.set_campaign_id(id);
    v1::GetCampaignResponse got;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    if (stub->GetCampaign(&ctx, get, &got).ok()) {
      p = got.progress();
      uint64_t finished = p.cells_done() + p.cells_failed();
      if (!have_first) {
        first_finished = finished;
        have_first = true;
      }
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      double rate = secs > 0 ? (finished - first_finished) / secs : 0;
      // A campaign paused by its budget or its provider will not move on its
      // own here (tasks already running still finish).
      const bool paused = p.state() == v1::CAMPAIGN_STATE_PAUSED_BUDGET ||
                          p.state() == v1::CAMPAIGN_STATE_PAUSED_PROVIDER;
      bool ended = p.state() != v1::CAMPAIGN_STATE_RUNNING && !(paused && p.tasks_leased() > 0);
      auto now = std::chrono::steady_clock::now();
      if (tty) {
        out << "\r\033[K" << Bar(p, rate, true) << std::flush;
      } else if (ended || now - last_line >= std::chrono::seconds(5)) {
        out << Bar(p, rate, false) << std::endl;
        last_line = now;
      }
      if (ended) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(tty ? 200 : 500));
  }
  if (tty) out << "\n";
  const bool interrupted = g_run_signal != 0 || !store_failure.ok();
  for (auto& w : pool) {
    w->Stop();
    if (interrupted) w->Stop();  // hand running tasks back now
  }
  for (auto& t : threads) t.join();
  std::signal(SIGINT, old_int);
  std::signal(SIGTERM, old_term);
  if (!store_failure.ok()) {
    server->Shutdown();
    return absl::Status(store_failure.code(),
                        absl::StrCat("state store failed: ", store_failure.message(),
                                     "; fix that, then run again with --state ",
                                     options.state_dir, " to resume"));
  }
  if (interrupted) {
    server->Shutdown();
    return absl::CancelledError(absl::StrCat(
        "interrupted; run again with --state ", options.state_dir, " to resume"));
  }
  absl::Status written = WriteReports(server->store(), id, options.out_dir, out);
  if (written.ok() && p.state() == v1::CAMPAIGN_STATE_PAUSED_BUDGET) {
    server->Shutdown();
    return absl::FailedPreconditionError(absl::StrCat(
        "paused by its budget: ", p.status_message(),
        " (with ftb run: raise budget.usd in the spec and run again on a fresh --state)"));
  }
  if (written.ok() && p.state() == v1::CAMPAIGN_STATE_PAUSED_PROVIDER) {
    server->Shutdown();
    return absl::FailedPreconditionError(absl::StrCat(
        "paused by the provider: ", p.status_message(),
        " (restore the quota, then run again with --state ", options.state_dir,
        " to resume; nothing done so far is redone)"));
  }
  std::string state = v1::CampaignState_Name(p.state());
  out << "campaign " << id << ": " << p.cells_done() << " of " << p.cells_total()
      << " cells done, " << p.cells_failed() << " failed ("
      << state.substr(std::string("CAMPAIGN_STATE_").size()) << ")\n";
  if (written.ok() && (p.cells_failed() > 0 || p.state() == v1::CAMPAIGN_STATE_FAILED)) {
    absl::StatusOr<std::vector<FailedCell>> failed = FailedCells(server->store(), id);
    if (failed.ok()) out << FailureLines(*failed);
    server->Shutdown();
    return CampaignFailedError(absl::StrCat(
        "campaign ", id, " ended ", state.substr(std::string("CAMPAIGN_STATE_").size()), ": ",
        p.cells_failed(), " of ", p.cells_total(), " cells failed",
        failed.ok() && !failed->empty() ? absl::StrCat("; first: ", failed->front().last_error)
                                        : std::string(),
        " (reports written; ftb status shows each)"));
  }
  server->Shutdown();
  return written;
}

}  // namespace ftb::cli

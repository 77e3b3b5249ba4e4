// The GUI's one handle on the engine: owns a dl::Session and runs it on a worker thread.
//
// Widgets never call the engine; they send requests here and react to signals, which are always
// emitted on the GUI thread. Requests are queued and numbered (generation). A new preview or run
// supersedes older ones: queued stale requests are dropped, a running one is cancelled through its
// std::atomic<bool> flag, and results of stale generations are never emitted. Loading a model
// supersedes everything. One exception: a running preview of the same image and question is left
// to finish, since it is building the prefix cache the newer request needs (a slider dragged
// while a 7B model builds its trunk must not restart the trunk at every move).
//
// Every stage reports progress and stops at a cancel: loading (per weight tensor), the vision
// tower (per layer), the unpruned trunk of a preview (per layer), decoding (per token). A run
// cancelled by the user during decoding still reports the answer so far (methodFinished with
// MethodRun::cancelled set), then `cancelled`.
#pragma once

#include <QMutex>
#include <QObject>
#include <QString>
#include <QThread>
#include <QVector>
#include <QWaitCondition>
#include <atomic>
#include <deque>
#include <functional>
#include <memory>

#include "core/api.h"

Q_DECLARE_METATYPE(dl::ModelInfo)
Q_DECLARE_METATYPE(dl::PromptInfo)
Q_DECLARE_METATYPE(dl::ImageGeometry)
Q_DECLARE_METATYPE(dl::PruningResult)
Q_DECLARE_METATYPE(dl::MethodRun)
Q_DECLARE_METATYPE(dl::PruneConfig)
Q_DECLARE_METATYPE(dl::RunRequest)

namespace dlui {

class EngineController : public QObject {
    Q_OBJECT
public:
    explicit EngineController(QObject* parent = nullptr);
    ~EngineController() override;

    // Each returns the request's generation. Results arrive through the signals below.
    quint64 loadModel(const QString& dir, const dl::LoadOptions& options);
    // prepare(request) then preview(config) for each config: previewReady(gen, results).
    quint64 preview(const dl::RunRequest& request, const QVector<dl::PruneConfig>& configs);
    // prepare(request) then run(config) for each config: methodFinished per config (slot = index
    // into configs), then runFinished(gen, runs). usePrefixCache=false recomputes everything from
    // the pixels, so the timings are measured rather than composed from the cache's per-layer
    // times (Session::run; MethodRun::from_prefix_cache says which).
    quint64 run(const dl::RunRequest& request, const QVector<dl::PruneConfig>& configs, int maxNewTokens,
                bool usePrefixCache = true);
    // Cancels the running request and drops queued ones.
    void cancel();

    // Test seam: called on the worker thread at every progress report of the engine, before it is
    // posted to the GUI thread, so a test can cancel at an exact stage (for instance by calling
    // cancel() through a blocking queued call). Set it while the controller is idle.
    using ProgressHook = std::function<void(double fraction, const std::string& stage)>;
    void setProgressHook(ProgressHook hook) { m_progressHook = std::move(hook); }

    bool busy() const;
    bool hasModel() const { return m_hasModel; }
    const dl::ModelInfo& modelInfo() const { return m_modelInfo; }
    quint64 latestGeneration() const { return m_generation; }

signals:
    void started(quint64 generation, QString what);
    void modelLoaded(dl::ModelInfo info);
    void progress(double fraction, QString stage);
    void prepared(dl::PromptInfo prompt, dl::ImageGeometry geometry);
    void previewReady(quint64 generation, QVector<dl::PruningResult> results);
    void methodFinished(quint64 generation, int slot, dl::MethodRun run);
    void runFinished(quint64 generation, QVector<dl::MethodRun> runs);
    // summary: one line saying what to do (dl::user_message); details: the engine's full message.
    void failed(QString summary, QString details);
    void cancelled();
    void idle();  // queue empty, worker waiting

private:
    enum class Kind { load, preview, run };
    struct Job {
        Kind kind = Kind::run;
        quint64 generation = 0;
        std::string inputs;  // image, question, template, preprocess of a preview/run ("" for load)
        std::shared_ptr<std::atomic<bool>> cancel;
        std::function<void(Job&)> work;  // runs on the worker thread
    };
    quint64 enqueue(Kind kind, std::string inputs, std::function<void(Job&)> work);
    void workerLoop();
    // Posts f to the GUI thread, where it runs only if the job is still current.
    void post(const Job& job, std::function<void()> f);
    // Same, but also runs for the run the user has just cancelled (its partial answer).
    void postPartial(const Job& job, std::function<void()> f);
    bool isCurrent(Kind kind, quint64 generation) const;
    // A ProgressFn for the job: calls the hook, then emits progress(lo + (hi - lo) * f, stage).
    dl::ProgressFn progressFor(const Job& job, double lo, double hi);

    dl::Session m_session;  // touched only by the worker thread
    QThread* m_thread = nullptr;
    mutable QMutex m_mutex;
    QWaitCondition m_wake;
    std::deque<Job> m_queue;
    std::shared_ptr<std::atomic<bool>> m_runningCancel;
    Kind m_runningKind = Kind::run;
    quint64 m_runningGeneration = 0;
    std::string m_runningInputs;
    ProgressHook m_progressHook;
    bool m_running = false;
    bool m_quit = false;
    // GUI thread only: latest issued generation, latest load, latest preview/run (a load also
    // counts as the latest work, so work issued before it is stale).
    quint64 m_generation = 0;
    quint64 m_latestLoad = 0;
    quint64 m_latestWork = 0;
    quint64 m_userCancelledRun = 0;  // the run cancel() stopped: its partial answer is still shown
    // GUI-thread copies
    bool m_hasModel = false;
    dl::ModelInfo m_modelInfo;
};

}  // namespace dlui

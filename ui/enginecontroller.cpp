// Worker-thread engine session with request superseding (see enginecontroller.h).
#include "ui/enginecontroller.h"

#include <stdexcept>

#include <QCoreApplication>
#include <QMutexLocker>

namespace dlui {

static void register_metatypes() {
    static bool done = false;
    if (done) return;
    done = true;
    qRegisterMetaType<dl::ModelInfo>("dl::ModelInfo");
    qRegisterMetaType<dl::PromptInfo>("dl::PromptInfo");
    qRegisterMetaType<dl::ImageGeometry>("dl::ImageGeometry");
    qRegisterMetaType<dl::PruningResult>("dl::PruningResult");
    qRegisterMetaType<dl::MethodRun>("dl::MethodRun");
    qRegisterMetaType<dl::PruneConfig>("dl::PruneConfig");
    qRegisterMetaType<dl::RunRequest>("dl::RunRequest");
    qRegisterMetaType<QVector<dl::PruningResult>>("QVector<dl::PruningResult>");
    qRegisterMetaType<QVector<dl::MethodRun>>("QVector<dl::MethodRun>");
}

EngineController::EngineController(QObject* parent) : QObject(parent) {
    register_metatypes();
    m_thread = QThread::create([this] { workerLoop(); });
    m_thread->setObjectName("dartlens-engine");
    m_thread->start();
}

EngineController::~EngineController() {
    {
        QMutexLocker lock(&m_mutex);
        m_quit = true;
        m_queue.clear();
        if (m_runningCancel) m_runningCancel->store(true);
        m_wake.wakeAll();
    }
    m_thread->wait();
    delete m_thread;
}

bool EngineController::busy() const {
    QMutexLocker lock(&m_mutex);
    return m_running || !m_queue.empty();
}

bool EngineController::isCurrent(Kind kind, quint64 generation) const {
    return kind == Kind::load ? generation == m_latestLoad : generation == m_latestWork;
}

void EngineController::post(const Job& job, std::function<void()> f) {
    const Kind kind = job.kind;
    const quint64 gen = job.generation;
    QMetaObject::invokeMethod(
        this, [this, kind, gen, f = std::move(f)] {
            if (isCurrent(kind, gen)) f();
        },
        Qt::QueuedConnection);
}

void EngineController::postPartial(const Job& job, std::function<void()> f) {
    const Kind kind = job.kind;
    const quint64 gen = job.generation;
    QMetaObject::invokeMethod(
        this, [this, kind, gen, f = std::move(f)] {
            if (isCurrent(kind, gen) || gen == m_userCancelledRun) f();
        },
        Qt::QueuedConnection);
}

dl::ProgressFn EngineController::progressFor(const Job& job, double lo, double hi) {
    return [this, &job, lo, hi](double f, const std::string& stage) {
        if (m_progressHook) m_progressHook(f, stage);
        const double v = lo + (hi - lo) * f;
        const QString s = QString::fromStdString(stage);
        post(job, [this, v, s] { emit progress(v, s); });
    };
}

static std::string inputs_key(const dl::RunRequest& r) {
    return r.image_path + '\x1f' + r.question + '\x1f' + r.template_name + '\x1f' + r.preprocess;
}

quint64 EngineController::enqueue(Kind kind, std::string inputs, std::function<void(Job&)> work) {
    Job job;
    job.kind = kind;
    job.generation = ++m_generation;
    job.inputs = std::move(inputs);
    job.cancel = std::make_shared<std::atomic<bool>>(false);
    job.work = std::move(work);
    if (kind == Kind::load) m_latestLoad = job.generation;
    m_latestWork = job.generation;
    {
        QMutexLocker lock(&m_mutex);
        // Drop superseded queued jobs: a load drops everything, work drops older work.
        std::deque<Job> kept;
        for (Job& q : m_queue)
            if (kind != Kind::load && q.kind == Kind::load) kept.push_back(std::move(q));
        m_queue.swap(kept);
        // A running load is superseded only by another load. A running preview of the same
        // inputs is building the prefix cache the new request needs: let it finish (its results
        // are stale and dropped), instead of restarting the trunk from scratch.
        const bool fillsCache = kind != Kind::load && m_runningKind == Kind::preview && m_runningInputs == job.inputs;
        if (m_runningCancel && (kind == Kind::load || m_runningKind != Kind::load) && !fillsCache)
            m_runningCancel->store(true);
        m_queue.push_back(std::move(job));
        m_wake.wakeAll();
    }
    return m_generation;
}

quint64 EngineController::loadModel(const QString& dir, const dl::LoadOptions& options) {
    const std::string d = dir.toStdString();
    m_hasModel = false;
    return enqueue(Kind::load, std::string(), [this, d, options](Job& job) {
        // per weight tensor, then per layer of the warm-up
        dl::ModelInfo info = m_session.load_model(d, options, progressFor(job, 0.0, 1.0), job.cancel.get());
        post(job, [this, info] {
            m_hasModel = true;
            m_modelInfo = info;
            emit modelLoaded(info);
        });
    });
}

quint64 EngineController::preview(const dl::RunRequest& request, const QVector<dl::PruneConfig>& configs) {
    return enqueue(Kind::preview, inputs_key(request), [this, request, configs](Job& job) {
        if (!m_session.has_model()) throw std::runtime_error("no model loaded");
        // The first preview of new inputs computes vision (per CLIP layer) and the unpruned trunk
        // (per decoder layer, inside the first preview() call): both report progress and cancel.
        dl::PromptInfo prompt = m_session.prepare(request, progressFor(job, 0.0, 0.3), job.cancel.get());
        dl::ImageGeometry geometry = m_session.geometry();
        post(job, [this, prompt, geometry] { emit prepared(prompt, geometry); });
        const dl::ProgressFn trunk = progressFor(job, 0.3, 1.0);
        QVector<dl::PruningResult> results;
        for (const dl::PruneConfig& c : configs) {
            if (job.cancel->load()) throw dl::Cancelled();
            results.push_back(m_session.preview(c, trunk, job.cancel.get()));
        }
        post(job, [this, g = job.generation, results] { emit previewReady(g, results); });
    });
}

quint64 EngineController::run(const dl::RunRequest& request, const QVector<dl::PruneConfig>& configs,
                              int maxNewTokens, bool usePrefixCache) {
    return enqueue(Kind::run, inputs_key(request), [this, request, configs, maxNewTokens, usePrefixCache](Job& job) {
        if (!m_session.has_model()) throw std::runtime_error("no model loaded");
        const int n = configs.size();
        // the prepare stage gets the first 20% of the bar, each method an equal share after it
        dl::PromptInfo prompt = m_session.prepare(request, progressFor(job, 0.0, 0.2), job.cancel.get());
        dl::ImageGeometry geometry = m_session.geometry();
        post(job, [this, prompt, geometry] { emit prepared(prompt, geometry); });
        QVector<dl::MethodRun> runs;
        for (int i = 0; i < n; ++i) {
            const double lo = 0.2 + 0.8 * i / n, hi = 0.2 + 0.8 * (i + 1) / n;
            dl::MethodRun r = m_session.run(configs[i], maxNewTokens, progressFor(job, lo, hi), job.cancel.get(),
                                            usePrefixCache);
            if (r.cancelled) {
                // stopped during decode: the answer so far is shown if the user cancelled (a
                // superseded run stays silent), and the remaining methods are not run
                postPartial(job, [this, g = job.generation, i, r] { emit methodFinished(g, i, r); });
                throw dl::Cancelled();
            }
            if (job.cancel->load()) throw dl::Cancelled();
            runs.push_back(r);
            post(job, [this, g = job.generation, i, r] { emit methodFinished(g, i, r); });
        }
        post(job, [this, g = job.generation, runs] { emit runFinished(g, runs); });
    });
}

void EngineController::cancel() {
    // make every outstanding result stale, then stop the worker's current job
    const quint64 gen = ++m_generation;
    m_latestWork = gen;
    bool wasLoading = false;
    {
        QMutexLocker lock(&m_mutex);
        for (const Job& q : m_queue) wasLoading |= q.kind == Kind::load;
        wasLoading |= m_running && m_runningKind == Kind::load;
        if (m_running && m_runningKind == Kind::run) m_userCancelledRun = m_runningGeneration;
        m_queue.clear();
        if (m_runningCancel) m_runningCancel->store(true);
    }
    if (wasLoading) m_latestLoad = gen;
}

void EngineController::workerLoop() {
    for (;;) {
        Job job;
        {
            QMutexLocker lock(&m_mutex);
            while (!m_quit && m_queue.empty()) m_wake.wait(&m_mutex);
            if (m_quit) return;
            job = std::move(m_queue.front());
            m_queue.pop_front();
            m_running = true;
            m_runningCancel = job.cancel;
            m_runningKind = job.kind;
            m_runningGeneration = job.generation;
            m_runningInputs = job.inputs;
        }
        const Kind kind = job.kind;
        const quint64 gen = job.generation;
        QMetaObject::invokeMethod(
            this, [this, kind, gen] {
                if (isCurrent(kind, gen))
                    emit started(gen, kind == Kind::load ? "load" : kind == Kind::preview ? "preview" : "run");
            },
            Qt::QueuedConnection);
        // Errors are reported only for current jobs; a cancelled job reports `cancelled` once.
        // Cancellation is judged by the flag, so a superseded job stays silent.
        bool wasCancelled = false;
        QString error, details;
        try {
            job.work(job);
        } catch (const dl::Cancelled&) {
            wasCancelled = true;
        } catch (const std::exception& e) {
            if (job.cancel->load()) {
                wasCancelled = true;
            } else {
                const dl::UserMessage m = dl::user_message(e);
                error = QString::fromStdString(m.summary);
                details = QString::fromStdString(m.details);
            }
        }
        bool queueEmpty = false;
        {
            QMutexLocker lock(&m_mutex);
            m_running = false;
            m_runningCancel.reset();
            m_runningInputs.clear();
            queueEmpty = m_queue.empty();
        }
        QMetaObject::invokeMethod(
            this, [this, kind, gen, wasCancelled, error, details, queueEmpty] {
                // a cancelled job whose generation is no longer current was superseded or
                // cancelled by the user: report `cancelled` only when nothing newer is queued
                if (wasCancelled) {
                    if (queueEmpty && !busy()) emit cancelled();
                } else if (!error.isEmpty()) {
                    if (isCurrent(kind, gen)) emit failed(error, details);
                }
                if (!busy()) emit idle();
            },
            Qt::QueuedConnection);
    }
}

}  // namespace dlui

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

quint64 EngineController::enqueue(Kind kind, std::function<void(Job&)> work) {
    Job job;
    job.kind = kind;
    job.generation = ++m_generation;
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
        // a running load is superseded only by another load
        if (m_runningCancel && (kind == Kind::load || m_runningKind != Kind::load)) m_runningCancel->store(true);
        m_queue.push_back(std::move(job));
        m_wake.wakeAll();
    }
    return m_generation;
}

quint64 EngineController::loadModel(const QString& dir, const dl::LoadOptions& options) {
    const std::string d = dir.toStdString();
    m_hasModel = false;
    return enqueue(Kind::load, [this, d, options](Job& job) {
        auto cb = [this, &job](double f, const std::string& stage) {
            const QString s = QString::fromStdString(stage);
            post(job, [this, f, s] { emit progress(f, s); });
        };
        dl::ModelInfo info = m_session.load_model(d, options, cb, job.cancel.get());
        post(job, [this, info] {
            m_hasModel = true;
            m_modelInfo = info;
            emit modelLoaded(info);
        });
    });
}

quint64 EngineController::preview(const dl::RunRequest& request, const QVector<dl::PruneConfig>& configs) {
    return enqueue(Kind::preview, [this, request, configs](Job& job) {
        if (!m_session.has_model()) throw std::runtime_error("no model loaded");
        // the first preview of new inputs computes vision + the unpruned trunk: show progress
        auto cb = [this, &job](double f, const std::string& stage) {
            const QString s = QString::fromStdString(stage);
            post(job, [this, f, s] { emit progress(f, s); });
        };
        dl::PromptInfo prompt = m_session.prepare(request, cb, job.cancel.get());
        dl::ImageGeometry geometry = m_session.geometry();
        post(job, [this, prompt, geometry] { emit prepared(prompt, geometry); });
        QVector<dl::PruningResult> results;
        for (const dl::PruneConfig& c : configs) {
            if (job.cancel->load()) throw dl::Cancelled();
            results.push_back(m_session.preview(c));
        }
        post(job, [this, g = job.generation, results] { emit previewReady(g, results); });
    });
}

quint64 EngineController::run(const dl::RunRequest& request, const QVector<dl::PruneConfig>& configs,
                              int maxNewTokens) {
    return enqueue(Kind::run, [this, request, configs, maxNewTokens](Job& job) {
        if (!m_session.has_model()) throw std::runtime_error("no model loaded");
        const int n = configs.size();
        // the prepare stage gets the first 20% of the bar, each method an equal share after it
        auto stage_cb = [this, &job](double lo, double hi) {
            return [this, &job, lo, hi](double f, const std::string& stage) {
                const double v = lo + (hi - lo) * f;
                const QString s = QString::fromStdString(stage);
                post(job, [this, v, s] { emit progress(v, s); });
            };
        };
        dl::PromptInfo prompt = m_session.prepare(request, stage_cb(0.0, 0.2), job.cancel.get());
        dl::ImageGeometry geometry = m_session.geometry();
        post(job, [this, prompt, geometry] { emit prepared(prompt, geometry); });
        QVector<dl::MethodRun> runs;
        for (int i = 0; i < n; ++i) {
            const double lo = 0.2 + 0.8 * i / n, hi = 0.2 + 0.8 * (i + 1) / n;
            dl::MethodRun r = m_session.run(configs[i], maxNewTokens, stage_cb(lo, hi), job.cancel.get());
            if (r.cancelled || job.cancel->load()) throw dl::Cancelled();
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
        QString error;
        try {
            job.work(job);
        } catch (const dl::Cancelled&) {
            wasCancelled = true;
        } catch (const std::exception& e) {
            if (job.cancel->load()) wasCancelled = true;
            else error = QString::fromUtf8(e.what());
        }
        bool queueEmpty = false;
        {
            QMutexLocker lock(&m_mutex);
            m_running = false;
            m_runningCancel.reset();
            queueEmpty = m_queue.empty();
        }
        QMetaObject::invokeMethod(
            this, [this, kind, gen, wasCancelled, error, queueEmpty] {
                // a cancelled job whose generation is no longer current was superseded or
                // cancelled by the user: report `cancelled` only when nothing newer is queued
                if (wasCancelled) {
                    if (queueEmpty && !busy()) emit cancelled();
                } else if (!error.isEmpty()) {
                    if (isCurrent(kind, gen)) emit failed(error);
                }
                if (!busy()) emit idle();
            },
            Qt::QueuedConnection);
    }
}

}  // namespace dlui

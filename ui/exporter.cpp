// Export on a pool thread (see exporter.h).
#include "ui/exporter.h"

#include <QFutureWatcher>
#include <QtConcurrent/QtConcurrentRun>

#include <stdexcept>

#include "core/render/export.h"
#include "core/analysis/report.h"

namespace dlui {

QStringList run_export(const ExportJob& job) {
    if (job.runs.empty() || !job.original)
        throw std::runtime_error("nothing to export: run the comparison first (Ctrl+R)");
    dl::ExportRequest req;
    req.dir = job.dir.toStdString();
    req.overwrite = job.overwrite;
    req.original = *job.original;
    req.geometry = job.geometry;
    req.runs = job.runs;
    req.question = job.question;
    req.report_json = dl::report_json(job.model, job.prompt, job.geometry, job.runs, job.question);
    req.overlay = job.overlay;
    QStringList out;
    for (const std::string& p : dl::export_all(req)) out << QString::fromStdString(p);
    return out;
}

namespace {

struct Outcome {
    QStringList files;
    QString summary, details;  // summary empty: success
};

}  // namespace

Exporter::Exporter(QObject* parent) : QObject(parent) { m_pool.setMaxThreadCount(1); }

Exporter::~Exporter() { m_pool.waitForDone(); }

quint64 Exporter::start(ExportJob job) {
    const quint64 id = ++m_nextId;
    ++m_inFlight;
    auto* watcher = new QFutureWatcher<Outcome>(this);
    connect(watcher, &QFutureWatcher<Outcome>::finished, this, [this, watcher, id] {
        const Outcome o = watcher->result();
        watcher->deleteLater();
        --m_inFlight;
        if (o.summary.isEmpty()) emit finished(id, o.files);
        else emit failed(id, o.summary, o.details);
    });
    watcher->setFuture(QtConcurrent::run(&m_pool, [job = std::move(job)]() {
        Outcome o;
        try {
            o.files = run_export(job);
        } catch (const std::exception& e) {
            const dl::UserMessage m = dl::user_message(e);
            o.summary = QString::fromStdString(m.summary).section('\n', 0, 0);
            o.details = QString::fromStdString(m.details);
            if (o.summary.isEmpty()) o.summary = "export failed";
        } catch (...) {
            o.summary = "export failed";
        }
        return o;
    }));
    return id;
}

}  // namespace dlui

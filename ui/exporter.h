// Writes a comparison's files (overlays, composite, report.json, figures.csv: dl::export_all) off
// the GUI thread.
//
// An ExportJob is a snapshot taken on the GUI thread (the picture is shared, not copied); the
// drawing, the report and the writing run on a pool thread of the exporter's own, one export at a
// time, in the order they were started. Each start ends in exactly one signal on the GUI thread:
// finished(id, files) or failed(id, summary, details), summary being one line (dl::user_message).
#pragma once

#include <QObject>
#include <QString>
#include <QStringList>
#include <QThreadPool>
#include <memory>
#include <vector>

#include "core/api.h"
#include "core/render/overlay.h"

namespace dlui {

struct ExportJob {
    QString dir;                                   // created if missing
    bool overwrite = false;                        // false: fail before writing if a file exists
    std::shared_ptr<const dl::RgbImage> original;  // the picture the overlays are drawn on
    dl::ImageGeometry geometry;
    std::vector<dl::MethodRun> runs;               // one file set per run, in column order
    std::string question;
    dl::ModelInfo model;
    dl::PromptInfo prompt;
    dl::OverlayOptions overlay;
};

// The export itself: pure, any thread; returns the files written, throws dl::Error (or
// std::runtime_error when there is nothing to export).
QStringList run_export(const ExportJob& job);

class Exporter : public QObject {
    Q_OBJECT
public:
    explicit Exporter(QObject* parent = nullptr);
    ~Exporter() override;  // waits for the exports under way: files are never left half-written

    quint64 start(ExportJob job);  // returns the export's id
    bool busy() const { return m_inFlight > 0; }

signals:
    void finished(quint64 id, QStringList files);
    void failed(quint64 id, QString summary, QString details);

private:
    QThreadPool m_pool;
    quint64 m_nextId = 0;
    int m_inFlight = 0;
};

}  // namespace dlui

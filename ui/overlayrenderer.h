// Draws the method columns' pictures (kept tokens, pivots, heatmaps: dl::render_overlay) off the
// GUI thread.
//
// An OverlayJob is a snapshot of what to draw: the original picture (shared, never copied), the
// model's geometry, each column's selection and the overlay options. render() numbers it and runs
// it on a pool thread of the renderer's own; framesReady(generation, frames) arrives on the GUI
// thread for the latest request only. A newer request supersedes an older one: the older result
// is dropped even if it finishes later, and at most one request waits behind the running one (a
// dragged slider draws its latest position, not every position it passed).
#pragma once

#include <QImage>
#include <QObject>
#include <QStringList>
#include <QThreadPool>
#include <QVector>
#include <functional>
#include <memory>

#include "core/api.h"
#include "core/render/overlay.h"

template <typename T>
class QFutureWatcher;

namespace dlui {

struct OverlayJob {
    std::shared_ptr<const dl::RgbImage> original;  // null: no picture (every view is cleared)
    dl::ImageGeometry geometry;                    // the model's view of the original
    bool prepared = false;                         // geometry is known (a preview or run was made)
    dl::OverlayOptions options;
    QStringList methods;                           // the columns to draw
    QVector<bool> hasSelection;                    // per method: a selection to draw
    QVector<dl::PruningResult> selections;         // per method (ignored where hasSelection is false)
    int displayMax = 1280;                         // longest side drawn; bigger photos are scaled down
};

struct OverlayFrames {
    QStringList methods;
    QVector<QImage> images;             // per method: the overlay, the plain picture without a
                                        // selection, a null image without a picture
    dl::ImageGeometry displayGeometry;  // maps the drawn picture's pixels to patches (zero when not prepared)
    int pictureHeight = 0;              // rows of each image that show the picture (the legend is below)
    QString error;                      // the first drawing error, one line ("" = none)
};

// The drawing itself: pure, runs on any thread, never throws (errors go to frames.error).
// display: the picture scaled to displayMax (null: computed from job.original).
OverlayFrames render_overlays(const OverlayJob& job, std::shared_ptr<const dl::RgbImage> display = nullptr);

class OverlayRenderer : public QObject {
    Q_OBJECT
public:
    explicit OverlayRenderer(QObject* parent = nullptr);
    ~OverlayRenderer() override;  // waits for a drawing in progress

    // Returns the request's generation; framesReady(generation, ...) follows unless superseded.
    quint64 render(OverlayJob job);
    bool busy() const { return m_running || m_hasPending; }
    quint64 latestGeneration() const { return m_generation; }

    // Test seam: called on the pool thread before each drawing, with its generation.
    using RenderHook = std::function<void(quint64 generation)>;
    void setRenderHook(RenderHook hook) { m_hook = std::move(hook); }

signals:
    void framesReady(quint64 generation, dlui::OverlayFrames frames);

private:
    struct DisplayCache;
    void startPending();
    void onFinished();

    QThreadPool m_pool;
    QFutureWatcher<OverlayFrames>* m_watcher = nullptr;
    std::shared_ptr<DisplayCache> m_cache;  // the scaled display copy of the last picture
    RenderHook m_hook;
    quint64 m_generation = 0;
    quint64 m_runningGeneration = 0;
    bool m_running = false;
    bool m_hasPending = false;
    OverlayJob m_pending;
};

}  // namespace dlui

Q_DECLARE_METATYPE(dlui::OverlayFrames)

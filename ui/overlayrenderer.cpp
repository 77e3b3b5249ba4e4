// Overlay drawing on a pool thread, latest request wins (see overlayrenderer.h).
#include "ui/overlayrenderer.h"

#include <QFutureWatcher>
#include <QMutex>
#include <QMutexLocker>
#include <QtConcurrent/QtConcurrentRun>

#include <algorithm>
#include <cmath>
#include <cstring>

namespace dlui {

namespace {

QImage to_qimage(const dl::RgbImage& img) {
    if (img.width <= 0 || img.height <= 0) return {};
    return QImage(img.pixels.data(), img.width, img.height, img.width * 3, QImage::Format_RGB888).copy();
}

dl::RgbImage from_qimage(const QImage& in) {
    QImage img = in.convertToFormat(QImage::Format_RGB888);
    dl::RgbImage out;
    out.width = img.width();
    out.height = img.height();
    out.pixels.resize(size_t(out.width) * out.height * 3);
    for (int y = 0; y < out.height; ++y)
        memcpy(out.pixels.data() + size_t(y) * out.width * 3, img.constScanLine(y), size_t(out.width) * 3);
    return out;
}

// The picture as shown: the original, or a copy scaled so its longest side is displayMax.
std::shared_ptr<const dl::RgbImage> display_copy(const std::shared_ptr<const dl::RgbImage>& original, int displayMax) {
    const int longest = std::max(original->width, original->height);
    if (longest <= displayMax) return original;
    const double s = double(displayMax) / longest;
    const QImage q = to_qimage(*original).scaled(int(std::lround(original->width * s)),
                                                 int(std::lround(original->height * s)), Qt::IgnoreAspectRatio,
                                                 Qt::SmoothTransformation);
    return std::make_shared<const dl::RgbImage>(from_qimage(q));
}

}  // namespace

OverlayFrames render_overlays(const OverlayJob& job, std::shared_ptr<const dl::RgbImage> display) {
    OverlayFrames frames;
    frames.methods = job.methods;
    frames.images.resize(job.methods.size());
    if (!job.original || job.original->width <= 0) return frames;  // no picture: every view cleared
    try {
        if (!display) display = display_copy(job.original, job.displayMax);
        // the geometry of the display copy maps its pixels to patches
        const dl::ImageGeometry g = job.geometry.scaled_to(display->width, display->height);
        frames.displayGeometry = job.prepared ? g : dl::ImageGeometry{};
        frames.pictureHeight = display->height;
        const QImage plain = to_qimage(*display);
        for (int i = 0; i < job.methods.size(); ++i) {
            QImage img;
            if (job.prepared && i < job.hasSelection.size() && job.hasSelection[i]) {
                try {
                    img = to_qimage(dl::render_overlay(*display, g, job.selections[i], job.options));
                } catch (const std::exception& e) {
                    if (frames.error.isEmpty()) frames.error = QString("overlay: ") + e.what();
                }
            }
            frames.images[i] = img.isNull() ? plain : img;
        }
    } catch (const std::exception& e) {
        frames.error = QString("overlay: ") + e.what();
    }
    frames.error = frames.error.section('\n', 0, 0);
    return frames;
}

struct OverlayRenderer::DisplayCache {
    QMutex mutex;
    std::shared_ptr<const dl::RgbImage> original;  // held, so that the pointer is never reused
    int displayMax = 0;
    std::shared_ptr<const dl::RgbImage> display;
};

OverlayRenderer::OverlayRenderer(QObject* parent) : QObject(parent), m_cache(std::make_shared<DisplayCache>()) {
    qRegisterMetaType<OverlayFrames>("dlui::OverlayFrames");
    m_pool.setMaxThreadCount(1);
    m_watcher = new QFutureWatcher<OverlayFrames>(this);
    connect(m_watcher, &QFutureWatcher<OverlayFrames>::finished, this, &OverlayRenderer::onFinished);
}

OverlayRenderer::~OverlayRenderer() { m_pool.waitForDone(); }

quint64 OverlayRenderer::render(OverlayJob job) {
    m_pending = std::move(job);
    m_hasPending = true;
    ++m_generation;
    if (!m_running) startPending();
    return m_generation;
}

void OverlayRenderer::startPending() {
    m_hasPending = false;
    m_running = true;
    m_runningGeneration = m_generation;
    const quint64 gen = m_generation;
    // the job only touches what it captures: this object may be gone when it ends
    auto task = [job = std::move(m_pending), gen, hook = m_hook, cache = m_cache]() {
        if (hook) hook(gen);
        std::shared_ptr<const dl::RgbImage> display;
        if (job.original && job.original->width > 0) {
            QMutexLocker lock(&cache->mutex);
            try {
                if (cache->original != job.original || cache->displayMax != job.displayMax) {
                    cache->display = display_copy(job.original, job.displayMax);
                    cache->original = job.original;
                    cache->displayMax = job.displayMax;
                }
                display = cache->display;
            } catch (const std::exception&) {
                // render_overlays tries again and reports the error
            }
        }
        return render_overlays(job, display);
    };
    m_pending = OverlayJob{};
    m_watcher->setFuture(QtConcurrent::run(&m_pool, std::move(task)));
}

void OverlayRenderer::onFinished() {
    const quint64 gen = m_runningGeneration;
    OverlayFrames frames = m_watcher->result();
    m_running = false;
    // a newer request is waiting: this result is stale, drop it and draw the newer one
    if (m_hasPending) {
        startPending();
        return;
    }
    if (gen == m_generation) emit framesReady(gen, frames);
}

}  // namespace dlui

// The overlay renderer and the exporter alone, on a hand-made picture and selection: pictures are
// drawn on the renderer's thread, not the GUI's; a request superseded by a newer one is never
// drawn or never delivered, even when it finishes last; a drawing error is one line and the
// plain picture still shows; an export that fails reports one line and the exporter goes on.
#include <QtTest>

#include <QMutex>
#include <QSemaphore>
#include <QFile>
#include <QThread>
#include <QTemporaryDir>

#include <memory>

#include "ui/exporter.h"
#include "ui/overlayrenderer.h"

using namespace dlui;

static const int k_timeout = 60000;

// A 64x48 picture seen through a 4x4 grid of 8 px patches, padded to a 32 px square
// (preprocessed = original * 0.5 + (0, 4)).
static std::shared_ptr<const dl::RgbImage> picture() {
    auto img = std::make_shared<dl::RgbImage>();
    img->width = 64;
    img->height = 48;
    img->pixels.resize(size_t(64) * 48 * 3);
    for (size_t i = 0; i < img->pixels.size(); ++i) img->pixels[i] = uint8_t(40 + (i * 7) % 180);
    return img;
}

static dl::ImageGeometry geometry() {
    dl::ImageGeometry g;
    g.rows = g.cols = 4;
    g.patch_size = 8;
    g.image_size = 32;
    g.original_width = 64;
    g.original_height = 48;
    g.mode = "pad";
    g.scale_x = g.scale_y = 0.5;
    g.offset_y = 4;
    return g;
}

static dl::PruningResult selection(const std::string& method, std::vector<int> kept) {
    dl::PruningResult r;
    r.method = method;
    r.layer = 2;
    r.num_image_tokens = 16;
    r.budget = int(kept.size());
    r.kept_count = int(kept.size());
    r.kept_image_indices = std::move(kept);
    return r;
}

static OverlayJob job(const QString& method, std::vector<int> kept, const std::string& mode = "kept") {
    OverlayJob j;
    j.original = picture();
    j.geometry = geometry();
    j.prepared = true;
    j.options.mode = mode;
    j.methods << method;
    j.hasSelection << true;
    j.selections << selection(method.toStdString(), std::move(kept));
    return j;
}

// What the render hook saw, written on the renderer's thread.
struct Seen {
    QMutex mutex;
    QList<quint64> generations;
    QList<QThread*> threads;
    QList<quint64> gens() {
        QMutexLocker lock(&mutex);
        return generations;
    }
};

class TestRenderExport : public QObject {
    Q_OBJECT
private slots:
    void drawsOffTheGuiThread() {
        OverlayRenderer renderer;
        auto seen = std::make_shared<Seen>();
        renderer.setRenderHook([seen](quint64 gen) {
            QMutexLocker lock(&seen->mutex);
            seen->generations << gen;
            seen->threads << QThread::currentThread();
        });
        QSignalSpy ready(&renderer, &OverlayRenderer::framesReady);
        const quint64 gen = renderer.render(job("dart", {0, 5, 10, 15}));
        QVERIFY(renderer.busy());
        QTRY_COMPARE_WITH_TIMEOUT(ready.count(), 1, k_timeout);
        QVERIFY(!renderer.busy());
        QCOMPARE(seen->gens(), QList<quint64>{gen});
        QVERIFY(seen->threads.first() != QThread::currentThread());
        QVERIFY(seen->threads.first() != qApp->thread());
        QCOMPARE(ready.first().at(0).toULongLong(), gen);
        const OverlayFrames frames = ready.first().at(1).value<OverlayFrames>();
        QCOMPARE(frames.methods, QStringList{"dart"});
        QCOMPARE(frames.images.size(), 1);
        QCOMPARE(frames.images[0].width(), 64);
        QVERIFY(frames.images[0].height() > 48);  // the legend strip below the picture
        QCOMPARE(frames.pictureHeight, 48);
        QCOMPARE(frames.displayGeometry.rows, 4);
        QVERIFY(frames.error.isEmpty());
        // a kept patch is untouched, a pruned one faded (patch 0 covers x 0..16, y 0..8)
        const OverlayFrames direct = render_overlays(job("dart", {0, 5, 10, 15}));
        QCOMPARE(direct.images[0], frames.images[0]);
        QCOMPARE(frames.images[0].pixelColor(4, 2), QColor(picture()->pixels[(2 * 64 + 4) * 3],
                                                           picture()->pixels[(2 * 64 + 4) * 3 + 1],
                                                           picture()->pixels[(2 * 64 + 4) * 3 + 2]));
    }

    // Request 1 is held inside its drawing while 2 and 3 are requested: 2 is never drawn (3
    // replaced it while it waited), 1 finishes last of the requests made so far but is dropped,
    // and only 3 arrives.
    void supersededResultIsDropped() {
        OverlayRenderer renderer;
        auto seen = std::make_shared<Seen>();
        auto gate = std::make_shared<QSemaphore>(0);
        struct OpenGate {
            std::shared_ptr<QSemaphore> gate;
            ~OpenGate() { gate->release(); }
        } openGate{gate};
        renderer.setRenderHook([seen, gate](quint64 gen) {
            {
                QMutexLocker lock(&seen->mutex);
                seen->generations << gen;
            }
            if (gen == 1) gate->acquire();
        });
        QSignalSpy ready(&renderer, &OverlayRenderer::framesReady);
        QCOMPARE(renderer.render(job("first", {0})), quint64(1));
        QTRY_COMPARE_WITH_TIMEOUT(seen->gens().size(), 1, k_timeout);  // 1 is drawing
        QCOMPARE(renderer.render(job("second", {1})), quint64(2));
        QCOMPARE(renderer.render(job("third", {2, 3}, "dup")), quint64(3));
        QTest::qWait(50);
        QCOMPARE(ready.count(), 0);
        gate->release();
        QTRY_VERIFY_WITH_TIMEOUT(!renderer.busy(), k_timeout);
        QTest::qWait(50);
        QCOMPARE(seen->gens(), (QList<quint64>{1, 3}));
        QCOMPARE(ready.count(), 1);
        QCOMPARE(ready.first().at(0).toULongLong(), quint64(3));
        QCOMPARE(ready.first().at(1).value<OverlayFrames>().methods, QStringList{"third"});
    }

    void drawingErrorIsOneLineAndThePictureStays() {
        const OverlayFrames frames = render_overlays(job("dart", {0}, "no-such-mode"));
        QVERIFY(!frames.error.isEmpty());
        QVERIFY(!frames.error.contains('\n'));
        QCOMPARE(frames.images[0].size(), QSize(64, 48));  // the plain picture
        // no picture: the views are cleared, without an error
        OverlayJob none = job("dart", {0});
        none.original.reset();
        const OverlayFrames cleared = render_overlays(none);
        QVERIFY(cleared.images[0].isNull());
        QVERIFY(cleared.error.isEmpty());
        // big photos are drawn at the display size, with a geometry to match
        OverlayJob big = job("dart", {0});
        big.displayMax = 32;
        const OverlayFrames small = render_overlays(big);
        QCOMPARE(small.images[0].width(), 32);
        QCOMPARE(small.pictureHeight, 24);
        QCOMPARE(small.displayGeometry.original_width, 32);
        QCOMPARE(small.displayGeometry.scale_x, 1.0);
    }

    void exportFailsInOneLineAndTheExporterGoesOn() {
        QTemporaryDir tmp;
        QFile file(tmp.filePath("a-file"));
        QVERIFY(file.open(QIODevice::WriteOnly));
        file.close();
        ExportJob j;
        j.original = picture();
        j.geometry = geometry();
        dl::MethodRun run;
        run.config.method = "dart";
        run.pruning = selection("dart", {0, 5});
        run.text = "a picture";
        j.runs.push_back(run);
        j.question = "What is it?";

        Exporter exporter;
        QSignalSpy finished(&exporter, &Exporter::finished);
        QSignalSpy failed(&exporter, &Exporter::failed);
        ExportJob bad = j;
        bad.dir = tmp.filePath("a-file/export");  // a directory inside a file
        const quint64 badId = exporter.start(bad);
        ExportJob empty = j;
        empty.runs.clear();
        empty.dir = tmp.filePath("empty");
        const quint64 emptyId = exporter.start(empty);
        ExportJob good = j;
        good.dir = tmp.filePath("good");
        const quint64 goodId = exporter.start(good);
        QVERIFY(exporter.busy());
        QTRY_VERIFY_WITH_TIMEOUT(finished.count() + failed.count() == 3, k_timeout);
        QVERIFY(!exporter.busy());
        QCOMPARE(failed.count(), 2);
        QCOMPARE(failed.at(0).at(0).toULongLong(), badId);
        QCOMPARE(failed.at(1).at(0).toULongLong(), emptyId);
        for (const QList<QVariant>& f : failed) {
            const QString summary = f.at(1).toString();
            QVERIFY2(!summary.isEmpty() && !summary.contains('\n'), qPrintable(summary));
        }
        QVERIFY2(failed.at(0).at(1).toString().contains("a-file"), qPrintable(failed.at(0).at(1).toString()));
        QVERIFY(failed.at(1).at(1).toString().contains("nothing to export"));
        QCOMPARE(finished.count(), 1);
        QCOMPARE(finished.first().at(0).toULongLong(), goodId);
        const QStringList files = finished.first().at(1).toStringList();
        QCOMPARE(files.size(), 4);  // 1 overlay + composite + report.json + figures.csv
        for (const QString& f : files) QVERIFY2(QFileInfo(f).size() > 0, qPrintable(f));
    }
};

QTEST_MAIN(TestRenderExport)
#include "test_render_export.moc"

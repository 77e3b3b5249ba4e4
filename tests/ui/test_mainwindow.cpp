// Drives the real window offscreen on the generated tiny model: load, run, live preview on the
// ratio slider (overlay pixels change), patch hover tooltip, export (files read back, no silent
// overwrite), and the engine controller's superseding of stale requests. Then what a real 7B
// model needs from the window: no generation per slider move when runs are slow, composed vs
// measured latency bars, a partial answer after a cancel, one-line errors with details, pictures
// drawn off the GUI thread (a superseded one never shown), an export error that leaves the
// window working. (test_engine_cancel.cpp cancels every stage of a bigger model; test_runstate.cpp
// and test_render_export.cpp test the run-state model, the renderer and the exporter alone.)
#include <QtTest>

#include <QDir>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QChart>
#include <QPainter>
#include <QSlider>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QTextBrowser>
#include <QLabel>
#include <QBarSet>
#include <QMessageBox>
#include <QMutex>
#include <QSemaphore>
#include <QThread>
#include <QSpinBox>
#include <QStackedBarSeries>

#include "core/model/make_model.h"
#include "ui/enginecontroller.h"
#include "ui/figuremodel.h"
#include "ui/mainwindow.h"
#include "ui/methodcolumn.h"
#include "ui/overlayrenderer.h"
#include "ui/overlayview.h"
#include "ui/patch_info.h"
#include "ui/runstate.h"

using namespace dlui;

static const int k_timeout = 120000;

// Arms `engine` to run `cancel` (on the GUI thread) at the nth progress report of `stage`. The
// hook runs on the worker thread and blocks until the GUI thread has cancelled, so the cancel
// lands inside that stage, at its next tensor/layer/token boundary, however fast the machine.
static void cancelAt(EngineController& engine, const std::string& stage, int nth, std::function<void()> cancel) {
    auto count = std::make_shared<int>(0);
    engine.setProgressHook([&engine, stage, nth, count, cancel](double, const std::string& s) {
        if (s == stage && ++*count == nth) QMetaObject::invokeMethod(&engine, cancel, Qt::BlockingQueuedConnection);
    });
}

static QBarSet* barSet(QChart* chart, const QString& label) {
    for (QAbstractSeries* s : chart->series())
        if (auto* bars = qobject_cast<QStackedBarSeries*>(s))
            for (QBarSet* set : bars->barSets())
                if (set->label() == label) return set;
    return nullptr;
}

class TestMainWindow : public QObject {
    Q_OBJECT
private:
    QTemporaryDir m_tmp;
    QString m_model, m_image;

private slots:
    void initTestCase() {
        QStandardPaths::setTestModeEnabled(true);
        QVERIFY(m_tmp.isValid());
        m_model = m_tmp.filePath("tiny-model");
        dl::make_model("tiny", m_model.toStdString(), 7);
        QVERIFY(QFileInfo(m_model + "/config.json").isFile());
        // a non-square picture with distinct regions, so that a centre crop matters
        QImage img(160, 112, QImage::Format_RGB888);
        img.fill(QColor(30, 90, 160));
        QPainter p(&img);
        p.fillRect(0, 0, 80, 56, QColor(220, 40, 40));
        p.fillRect(80, 56, 80, 56, QColor(40, 200, 60));
        p.setBrush(QColor(250, 240, 30));
        p.drawEllipse(QPoint(80, 56), 25, 20);
        p.end();
        m_image = m_tmp.filePath("picture.png");
        QVERIFY(img.save(m_image));
    }

    void windowEndToEnd() {
        MainWindowOptions opts;
        opts.restoreSettings = false;
        opts.openDemoIfFirstStart = false;
        MainWindow w(opts);
        w.show();
        // this test checks that released sliders regenerate the answers: allow it whatever the
        // machine's speed (sliderMovesDoNotGenerateWhenRunsAreSlow checks the other side)
        w.setAutoRunThresholdMs(600000);
        QSignalSpy ready(&w, &MainWindow::modelReady);
        QSignalSpy errors(&w, &MainWindow::errorShown);
        w.openImage(m_image);
        w.loadModel(m_model);
        QTRY_VERIFY_WITH_TIMEOUT(ready.count() == 1, k_timeout);
        QCOMPARE(errors.count(), 0);
        auto* randomLabel = w.findChild<QLabel*>("randomWeightsLabel");
        QVERIFY(randomLabel && randomLabel->isVisible());  // make_model writes random weights
        QCOMPARE(w.engine()->modelInfo().num_image_tokens, 16);

        // --- run: every column gets an answer and figures ---
        QSignalSpy done(&w, &MainWindow::runCompleted);
        w.runNow();
        QTRY_VERIFY_WITH_TIMEOUT(done.count() >= 1, k_timeout);
        QVERIFY2(errors.isEmpty(), errors.isEmpty() ? "" : qPrintable(errors.first().first().toString()));
        QVERIFY(w.hasResults());
        QCOMPARE(w.figureModel()->rowCount(), 3);
        for (const Figures& f : w.figureModel()->figures()) QVERIFY(f.total_ms > 0);
        QCOMPARE(w.figureModel()->figures()[0].speedup, 1.0);
        QVERIFY(!w.chart()->series().isEmpty());
        const dl::MethodRun* dartRun = w.runFor("dart");
        QVERIFY(dartRun);
        // the column shows the engine's answer words
        const QString answer = w.column("dart")->answerPlainText();
        for (const QString& word : QString::fromStdString(dartRun->text).split(' ', Qt::SkipEmptyParts).mid(0, 3))
            QVERIFY2(answer.contains(word), qPrintable(answer));
        // kept label: the real kept count of the result, out of N
        const dl::PruningResult* dart = w.resultFor("dart");
        QVERIFY(dart);
        QCOMPARE(int(dart->kept_image_indices.size()), dart->kept_count);
        QVERIFY2(w.keptText().contains(QString("%1 / 16 kept").arg(dart->kept_count)), qPrintable(w.keptText()));

        // --- live preview: moving the slider changes the overlay at once ---
        OverlayView* dartView = w.column("dart")->view();
        const QImage before = dartView->image();
        QVERIFY(!before.isNull());
        const int keptBefore = dart->kept_count;
        QSignalSpy previews(&w, &MainWindow::previewUpdated);
        w.ratioSlider()->setValue(250);  // R = 0.25: budget round(16 * 0.75) = 12
        QTRY_VERIFY_WITH_TIMEOUT(previews.count() >= 1 || done.count() >= 2, k_timeout);
        QTRY_VERIFY_WITH_TIMEOUT(w.resultFor("dart") && w.resultFor("dart")->budget == 12, k_timeout);
        QVERIFY(w.resultFor("dart")->kept_count != keptBefore);
        QTRY_VERIFY_WITH_TIMEOUT(dartView->image() != before, k_timeout);
        QCOMPARE(dartView->image().size(), before.size());
        // the answers are regenerated after the slider settles
        QTRY_VERIFY_WITH_TIMEOUT(w.hasResults(), k_timeout);
        QCOMPARE(w.runFor("dart")->pruning.budget, 12);
        QTRY_VERIFY_WITH_TIMEOUT(!w.renderer()->busy(), k_timeout);  // its pictures are up

        // --- hover: a kept DART patch, found through the geometry, not through the view ---
        const dl::ImageGeometry& g = w.imageGeometry();
        QCOMPARE(g.rows * g.cols, 16);
        // off the diagonal, so that a row/col mix-up cannot pass
        int patch = -1;
        for (int k : w.resultFor("dart")->kept_image_indices)
            if (k / g.cols != k % g.cols) { patch = k; break; }
        QVERIFY(patch >= 0);
        const dl::Box box = g.patch_box_original(patch);
        // the view shows the original picture (160x112 <= display limit), scene = original pixels
        const QPoint vp = dartView->mapFromScene(QPointF((box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2));
        QMouseEvent move(QEvent::MouseMove, QPointF(vp), QPointF(dartView->viewport()->mapToGlobal(vp)), Qt::NoButton,
                         Qt::NoButton, Qt::NoModifier);
        QApplication::sendEvent(dartView->viewport(), &move);
        QCOMPARE(dartView->hoveredPatch(), patch);
        const QString tip = dartView->hoverText();
        QVERIFY2(tip.contains(QString("patch %1 (row %2, col %3)").arg(patch).arg(patch / g.cols).arg(patch % g.cols)),
                 qPrintable(tip));
        QVERIFY2(tip.contains("kept by: Unpruned, DART"), qPrintable(tip));
        QVERIFY2(tip.contains("key L1"), qPrintable(tip));
        // outside the picture: no patch
        QMouseEvent away(QEvent::MouseMove, QPointF(1, 1), QPointF(dartView->viewport()->mapToGlobal(QPoint(1, 1))),
                         Qt::NoButton, Qt::NoButton, Qt::NoModifier);
        dartView->fitToWindow();
        QApplication::sendEvent(dartView->viewport(), &away);
        QVERIFY(dartView->hoveredPatch() == -1 ||
                patch_at(g, dartView->mapToScene(QPoint(1, 1)).x(), dartView->mapToScene(QPoint(1, 1)).y()) ==
                    dartView->hoveredPatch());

        // --- zoom ---
        const double z = dartView->zoomFactor();
        QWheelEvent wheel(QPointF(vp), QPointF(dartView->viewport()->mapToGlobal(vp)), QPoint(), QPoint(0, 120),
                          Qt::NoButton, Qt::NoModifier, Qt::NoScrollPhase, false);
        QApplication::sendEvent(dartView->viewport(), &wheel);
        QVERIFY(dartView->zoomFactor() > z * 1.2);

        // --- overlay modes: the duplication heatmap paints differently from "kept" ---
        const QImage keptImage = dartView->image();
        w.setOverlayMode("dup");
        QTRY_VERIFY_WITH_TIMEOUT(dartView->image() != keptImage, k_timeout);  // drawn off the GUI thread
        QCOMPARE(dartView->image().size(), keptImage.size());
        w.setOverlayMode("kept");
        QTRY_COMPARE_WITH_TIMEOUT(dartView->image(), keptImage, k_timeout);

        // --- hallucination flags against the objects listed ---
        w.setTruthTags("zebra");
        QVERIFY(w.column("none")->answerPlainText().contains("objects:"));

        // --- export: files read back; an existing export is never overwritten silently ---
        QTemporaryDir out;
        const QString dir = out.filePath("export");
        QSignalSpy exported(&w, &MainWindow::exportFinished);
        QSignalSpy exportErrors(&w, &MainWindow::exportFailed);
        QVERIFY(w.exportTo(dir, false));  // written on the exporter's thread
        QTRY_VERIFY_WITH_TIMEOUT(exported.count() == 1, k_timeout);
        const QStringList files = exported.first().first().toStringList();
        QVERIFY(files.size() >= 6);  // 3 overlays + composite + report.json + figures.csv
        for (const QString& f : files) QVERIFY2(QFileInfo(f).size() > 0, qPrintable(f));
        QFile report(QDir(dir).filePath("report.json"));
        QVERIFY(report.open(QIODevice::ReadOnly));
        const QJsonObject json = QJsonDocument::fromJson(report.readAll()).object();
        const QJsonArray runs = json.value("runs").toArray();
        QCOMPARE(runs.size(), 3);
        QCOMPARE(runs[1].toObject().value("text").toString(), QString::fromStdString(w.runFor("dart")->text));
        QCOMPARE(runs[1].toObject().value("pruning").toObject().value("kept_count").toInt(),
                 w.runFor("dart")->pruning.kept_count);
        QFile csv(QDir(dir).filePath("figures.csv"));
        QVERIFY(csv.open(QIODevice::ReadOnly));
        QCOMPARE(QString::fromUtf8(csv.readAll()).trimmed().count('\n') >= 3, true);
        int pngs = 0;
        for (const QString& f : files)
            if (f.endsWith(".png") && !f.contains("composite")) {
                QImage png(f);
                QCOMPARE(png.width(), 160);  // overlays are drawn on the original picture
                QVERIFY(png.height() >= 112);
                ++pngs;
            }
        QCOMPARE(pngs, 3);
        const QDateTime stamp = QFileInfo(QDir(dir).filePath("report.json")).lastModified();
        QVERIFY(w.exportTo(dir, false));
        QTRY_VERIFY_WITH_TIMEOUT(exportErrors.count() == 1, k_timeout);  // refused: the files exist
        const QString refusal = exportErrors.first().first().toString();
        QVERIFY2(refusal.contains("already exists") && !refusal.contains('\n'), qPrintable(refusal));
        QCOMPARE(errors.count(), 1);
        QCOMPARE(exported.count(), 1);
        QCOMPARE(QFileInfo(QDir(dir).filePath("report.json")).lastModified(), stamp);
        QVERIFY(w.exportTo(dir, true));
        QTRY_VERIFY_WITH_TIMEOUT(exported.count() == 2, k_timeout);
        QCOMPARE(exported.last().first().toStringList().size(), files.size());
        for (QMessageBox* box : w.findChildren<QMessageBox*>("errorBox")) box->close();

        // --- errors keep the window usable ---
        w.openImage(m_tmp.filePath("does-not-exist.png"));
        QCOMPARE(errors.count(), 2);
        QVERIFY(w.hasResults());  // the previous comparison is still there
    }

    void controllerSupersedes() {
        EngineController engine;
        QSignalSpy loaded(&engine, &EngineController::modelLoaded);
        QSignalSpy finished(&engine, &EngineController::runFinished);
        QSignalSpy failed(&engine, &EngineController::failed);
        engine.loadModel(m_model, dl::LoadOptions{});
        QTRY_VERIFY_WITH_TIMEOUT(loaded.count() == 1, k_timeout);
        dl::RunRequest req;
        req.image_path = m_image.toStdString();
        req.question = "What is in the picture?";
        req.max_new_tokens = 8;
        dl::PruneConfig a;
        a.method = "dart";
        a.ratio = 0.5;
        dl::PruneConfig b = a;
        b.ratio = 0.75;
        const quint64 genA = engine.run(req, {a}, 8);
        const quint64 genB = engine.run(req, {b}, 8);
        QVERIFY(genB > genA);
        QTRY_VERIFY_WITH_TIMEOUT(finished.count() >= 1, k_timeout);
        QTest::qWait(300);
        QCOMPARE(finished.count(), 1);  // A was superseded: never reported
        QCOMPARE(finished.first().at(0).toULongLong(), genB);
        const auto runs = finished.first().at(1).value<QVector<dl::MethodRun>>();
        QCOMPARE(runs.size(), 1);
        QCOMPARE(runs[0].pruning.budget, 4);  // round(16 * 0.25)
        QCOMPARE(failed.count(), 0);

        // an engine error arrives as failed(message) and the controller keeps working
        dl::RunRequest bad = req;
        bad.image_path = "/nonexistent/picture.png";
        engine.run(bad, {a}, 4);
        QTRY_VERIFY_WITH_TIMEOUT(failed.count() == 1, k_timeout);
        // one line naming the file; the engine's own message behind "Details"
        const QString summary = failed.first().at(0).toString();
        QVERIFY2(summary.startsWith("File not found: /nonexistent/picture.png"), qPrintable(summary));
        QVERIFY(!summary.contains('\n'));
        QVERIFY(failed.first().at(1).toString().contains("No such file or directory"));
        engine.run(req, {a}, 4);
        QTRY_VERIFY_WITH_TIMEOUT(finished.count() == 2, k_timeout);

        // cancel: the run stops, nothing is reported but `cancelled` (or it had already finished)
        QSignalSpy cancelled(&engine, &EngineController::cancelled);
        engine.run(req, {a, b}, 200);
        engine.cancel();
        QTRY_VERIFY_WITH_TIMEOUT(!engine.busy(), k_timeout);
        QTest::qWait(200);
        QCOMPARE(finished.count(), 2);
    }

    void settingsPersist() {
        {
            QSettings s;
            s.clear();
            s.setValue("model/dir", m_model);
            s.setValue("image/path", m_image);
            s.setValue("ratio", 0.5);
            s.setValue("question", "How many objects?");
            s.setValue("layer", 1);
            s.setValue("autoRunThresholdMs", 1234);
        }
        MainWindowOptions opts;  // restore settings, as a user start would
        MainWindow w(opts);
        QSignalSpy ready(&w, &MainWindow::modelReady);
        QTRY_VERIFY_WITH_TIMEOUT(ready.count() == 1, k_timeout);
        QCOMPARE(w.currentRequest().question, std::string("How many objects?"));
        QCOMPARE(w.configFor("dart").ratio, 0.5);
        QCOMPARE(w.configFor("dart").layer, 1);
        QCOMPARE(w.autoRunThresholdMs(), 1234);
        auto* thresholdBox = w.findChild<QSpinBox*>("autoRunThreshold");
        QVERIFY(thresholdBox);
        thresholdBox->setValue(4321);  // edited in the window: saved
        QCOMPARE(QSettings().value("autoRunThresholdMs").toInt(), 4321);
        QCOMPARE(QString::fromStdString(w.currentRequest().image_path), QFileInfo(m_image).absoluteFilePath());
        w.setRatio(0.625);
        QSettings s;
        QCOMPARE(s.value("ratio").toDouble(), 0.625);
        s.clear();
    }

    // Slow runs (the last one took longer than the threshold): twenty slider moves preview the
    // selection and mark the answers stale, but start no generation; Run does.
    void sliderMovesDoNotGenerateWhenRunsAreSlow() {
        MainWindowOptions opts;
        opts.restoreSettings = false;
        opts.openDemoIfFirstStart = false;
        MainWindow w(opts);
        w.show();
        QSignalSpy ready(&w, &MainWindow::modelReady);
        QSignalSpy done(&w, &MainWindow::runCompleted);
        QSignalSpy errors(&w, &MainWindow::errorShown);
        w.openImage(m_image);
        w.loadModel(m_model);
        QTRY_VERIFY_WITH_TIMEOUT(ready.count() == 1, k_timeout);
        QCOMPARE(w.autoRunThresholdMs(), 2000);  // the default
        w.runNow();
        QTRY_VERIFY_WITH_TIMEOUT(done.count() == 1 && w.hasResults(), k_timeout);
        QVERIFY(w.lastRunMs() >= 1);
        w.setAutoRunThresholdMs(1);  // the last run took longer than that

        QVERIFY(!w.runState()->autoRunAllowed());

        QSignalSpy started(w.engine(), &EngineController::started);
        QSignalSpy previews(&w, &MainWindow::previewUpdated);
        QSignalSpy autoRuns(w.runState(), &RunState::autoRunDue);
        QSlider* slider = w.ratioSlider();
        for (int i = 0; i < 20; ++i) {
            slider->setSliderDown(true);
            slider->setValue(300 + 25 * i);
            slider->setSliderDown(false);  // released: sliderReleased
            QVERIFY(!w.runState()->autoRunPending());
        }
        QTRY_VERIFY_WITH_TIMEOUT(w.resultFor("dart") && w.resultFor("dart")->budget == 4, k_timeout);  // R=0.775: round(16 * 0.225)
        // the spin box (keyboard, setRatio) is the other way to move R: no generation either
        for (int i = 0; i < 20; ++i) w.setRatio(0.3 + 0.02 * i);
        w.setRatio(0.775);
        QTest::qWait(1500);  // well past the 600 ms debounce of automatic runs
        for (const QList<QVariant>& s : started) QVERIFY2(s.at(1).toString() != "run", "a slider move generated");
        QCOMPARE(autoRuns.count(), 0);
        QTRY_VERIFY_WITH_TIMEOUT(w.resultFor("dart") && w.resultFor("dart")->budget == 4, k_timeout);
        QVERIFY(previews.count() >= 1);
        QCOMPARE(done.count(), 1);
        QVERIFY(!w.hasResults());
        QVERIFY(w.column("dart")->answerPlainText().contains("outdated"));
        QVERIFY(!w.column("none")->answerPlainText().contains("outdated"));  // R does not change it

        // Run regenerates the stale answers
        w.runNow();
        QTRY_VERIFY_WITH_TIMEOUT(done.count() == 2 && w.hasResults(), k_timeout);

        // fast runs: a released slider regenerates by itself
        w.setAutoRunThresholdMs(600000);
        slider->setSliderDown(true);
        slider->setValue(500);
        slider->setSliderDown(false);
        QTRY_VERIFY_WITH_TIMEOUT(done.count() == 3 && w.hasResults(), k_timeout);
        QCOMPARE(w.runFor("dart")->pruning.budget, 8);
        QCOMPARE(errors.count(), 0);
    }

    // Timings from the prefix cache are composed, drawn hatched with a note; "Measure cold" times
    // every stage and the bars become solid.
    void latencyChartTellsComposedFromMeasured() {
        MainWindowOptions opts;
        opts.restoreSettings = false;
        opts.openDemoIfFirstStart = false;
        MainWindow w(opts);
        w.show();
        QSignalSpy ready(&w, &MainWindow::modelReady);
        QSignalSpy done(&w, &MainWindow::runCompleted);
        w.openImage(m_image);
        w.loadModel(m_model);
        QTRY_VERIFY_WITH_TIMEOUT(ready.count() == 1, k_timeout);
        w.runNow();
        QTRY_VERIFY_WITH_TIMEOUT(done.count() == 1, k_timeout);
        for (const Figures& f : w.figureModel()->figures()) QVERIFY(f.composed);
        QBarSet* composed = barSet(w.chart(), "vision (composed)");
        QVERIFY(composed);
        QCOMPARE(composed->brush().style(), Qt::BDiagPattern);
        QVERIFY(composed->at(0) > 0);
        QCOMPARE(barSet(w.chart(), "vision")->at(0), 0.0);
        QCOMPARE(barSet(w.chart(), "vision")->brush().style(), Qt::SolidPattern);
        auto* note = w.findChild<QLabel*>("chartNote");
        QVERIFY(note && note->isVisibleTo(&w));
        const QModelIndex total = w.figureModel()->index(0, FigureModel::Total);
        QVERIFY(w.figureModel()->data(total, Qt::ToolTipRole).toString().contains("Measure cold"));

        w.measureCold();
        QTRY_VERIFY_WITH_TIMEOUT(done.count() == 2, k_timeout);
        QCOMPARE(w.figureModel()->rowCount(), 3);
        for (const Figures& f : w.figureModel()->figures()) QVERIFY(!f.composed);
        QVERIFY(!barSet(w.chart(), "vision (composed)"));
        QVERIFY(barSet(w.chart(), "vision")->at(0) > 0);
        QVERIFY(!note->isVisibleTo(&w));
        QVERIFY(w.hasResults());
        QVERIFY(!w.figureModel()->data(total, Qt::ToolTipRole).isValid());
    }

    // Cancel during decode in the window: the column shows the answer so far, says it was
    // cancelled, and Run regenerates it.
    void windowShowsPartialAnswerAfterCancel() {
        MainWindowOptions opts;
        opts.restoreSettings = false;
        opts.openDemoIfFirstStart = false;
        MainWindow w(opts);
        w.show();
        QSignalSpy ready(&w, &MainWindow::modelReady);
        QSignalSpy done(&w, &MainWindow::runCompleted);
        QSignalSpy cancelled(w.engine(), &EngineController::cancelled);
        w.openImage(m_image);
        w.loadModel(m_model);
        QTRY_VERIFY_WITH_TIMEOUT(ready.count() == 1, k_timeout);
        cancelAt(*w.engine(), "decode", 2, [&w] { w.cancelWork(); });
        w.runNow();  // "none" decodes first
        QTRY_VERIFY_WITH_TIMEOUT(cancelled.count() == 1, k_timeout);
        QTRY_VERIFY_WITH_TIMEOUT(!w.engine()->busy(), k_timeout);
        QCOMPARE(done.count(), 0);
        const dl::MethodRun* partial = w.runFor("none");
        QVERIFY(partial && partial->cancelled);
        QCOMPARE(int(partial->output_ids.size()), 2);
        QVERIFY2(w.column("none")->answerPlainText().contains("cancelled after 2 tokens"),
                 qPrintable(w.column("none")->answerPlainText()));
        QVERIFY(!w.hasResults());
        QCOMPARE(w.figureModel()->rowCount(), 0);  // a cancelled run's timings are not shown

        w.engine()->setProgressHook({});
        w.runNow();
        QTRY_VERIFY_WITH_TIMEOUT(done.count() == 1 && w.hasResults(), k_timeout);
        QVERIFY(!w.runFor("none")->cancelled);
        QCOMPARE(w.figureModel()->rowCount(), 3);
    }

    // The columns' pictures are drawn on the renderer's thread, never the GUI's, and a picture
    // superseded by a newer request never reaches the screen, even when it finishes later.
    void picturesAreDrawnOffTheGuiThread() {
        MainWindowOptions opts;
        opts.restoreSettings = false;
        opts.openDemoIfFirstStart = false;
        MainWindow w(opts);
        w.show();
        QSignalSpy ready(&w, &MainWindow::modelReady);
        QSignalSpy previews(&w, &MainWindow::previewUpdated);
        w.openImage(m_image);
        w.loadModel(m_model);
        QTRY_VERIFY_WITH_TIMEOUT(ready.count() == 1 && previews.count() >= 1, k_timeout);
        QTRY_VERIFY_WITH_TIMEOUT(!w.renderer()->busy(), k_timeout);
        OverlayView* view = w.column("dart")->view();
        const QImage kept = view->image();
        QVERIFY(!kept.isNull());

        // what the hook saw, written on the renderer's thread
        struct Seen {
            QMutex mutex;
            QList<quint64> generations;
            int onGui = 0;
            QList<quint64> get() {
                QMutexLocker lock(&mutex);
                return generations;
            }
        };
        QThread* const gui = QThread::currentThread();
        auto seen = std::make_shared<Seen>();
        auto gate = std::make_shared<QSemaphore>(0);
        // a failing check returns early: open the gate anyway, or the renderer never finishes
        struct OpenGate {
            std::shared_ptr<QSemaphore> gate;
            ~OpenGate() { gate->release(); }
        } openGate{gate};
        const quint64 first = w.renderer()->latestGeneration() + 1;
        w.renderer()->setRenderHook([gui, seen, gate, first](quint64 gen) {
            {
                QMutexLocker lock(&seen->mutex);
                seen->generations << gen;
                if (QThread::currentThread() == gui) ++seen->onGui;
            }
            if (gen == first) gate->acquire();  // the first drawing finishes only after newer requests
        });
        QSignalSpy frames(w.renderer(), &OverlayRenderer::framesReady);
        w.setOverlayMode("dup");  // drawn, held at the gate
        QTRY_VERIFY_WITH_TIMEOUT(seen->get().size() == 1, k_timeout);
        w.setOverlayMode("fastv");  // waits behind it, then superseded by the next
        w.setOverlayMode("kept");
        QVERIFY(w.renderer()->busy());
        QCOMPARE(view->image(), kept);  // the GUI thread went on; nothing shown yet
        gate->release();
        QTRY_VERIFY_WITH_TIMEOUT(!w.renderer()->busy(), k_timeout);
        QTest::qWait(50);
        QCOMPARE(seen->onGui, 0);
        QCOMPARE(seen->get(), (QList<quint64>{first, first + 2}));  // the middle request was never drawn
        QCOMPARE(frames.count(), 1);                              // the first one was dropped
        QCOMPARE(frames.first().first().toULongLong(), first + 2);
        QCOMPARE(view->image(), kept);
        w.renderer()->setRenderHook({});
    }

    // An export that fails (its directory cannot be made) says so in one line and the window
    // keeps working: the slider still previews and a later export succeeds.
    void exportErrorLeavesWindowUsable() {
        MainWindowOptions opts;
        opts.restoreSettings = false;
        opts.openDemoIfFirstStart = false;
        MainWindow w(opts);
        w.show();
        QSignalSpy ready(&w, &MainWindow::modelReady);
        QSignalSpy done(&w, &MainWindow::runCompleted);
        QSignalSpy errors(&w, &MainWindow::errorShown);
        QSignalSpy exported(&w, &MainWindow::exportFinished);
        QSignalSpy exportErrors(&w, &MainWindow::exportFailed);
        w.openImage(m_image);
        w.loadModel(m_model);
        QTRY_VERIFY_WITH_TIMEOUT(ready.count() == 1, k_timeout);
        QVERIFY(!w.exportTo(m_tmp.filePath("nothing"), false));  // no run yet: said at once
        QCOMPARE(errors.count(), 1);
        QVERIFY(errors.first().first().toString().startsWith("Nothing to export"));
        w.runNow();
        QTRY_VERIFY_WITH_TIMEOUT(done.count() == 1 && w.hasResults(), k_timeout);

        // a directory inside a file cannot be made
        const QString bad = m_image + "/export";
        QVERIFY(w.exportTo(bad, false));
        QTRY_VERIFY_WITH_TIMEOUT(exportErrors.count() == 1, k_timeout);
        const QString summary = exportErrors.first().first().toString();
        QVERIFY2(!summary.isEmpty() && !summary.contains('\n'), qPrintable(summary));
        QCOMPARE(errors.count(), 2);
        QCOMPARE(errors.last().first().toString(), summary);
        QCOMPARE(exported.count(), 0);
        bool boxShown = false;
        for (QMessageBox* box : w.findChildren<QMessageBox*>("errorBox")) {
            boxShown |= box->text() == summary;
            box->close();
        }
        QVERIFY(boxShown);

        // still usable: the slider previews, the results stay, a good export works
        QVERIFY(w.hasResults());
        QSignalSpy previews(&w, &MainWindow::previewUpdated);
        w.setRatio(0.5);
        QTRY_VERIFY_WITH_TIMEOUT(previews.count() >= 1 && w.resultFor("dart")->budget == 8, k_timeout);
        QTemporaryDir out;
        QVERIFY(w.exportTo(out.filePath("good"), false));
        QTRY_VERIFY_WITH_TIMEOUT(exported.count() == 1, k_timeout);
        QVERIFY(QFileInfo(out.filePath("good/report.json")).size() > 0);
        QCOMPARE(exportErrors.count(), 1);
    }

    // An error is one line saying what to do, the engine's message behind "Show Details...", and
    // the window keeps working.
    void errorsAreOneLineWithDetails() {
        const QString broken = m_tmp.filePath("no-tokenizer");
        QVERIFY(QDir().mkpath(broken));
        for (const QString& f : QDir(m_model).entryList(QDir::Files))
            if (f != "tokenizer.model") QVERIFY(QFile::copy(QDir(m_model).filePath(f), QDir(broken).filePath(f)));
        MainWindowOptions opts;
        opts.restoreSettings = false;
        opts.openDemoIfFirstStart = false;
        MainWindow w(opts);
        w.show();
        QSignalSpy ready(&w, &MainWindow::modelReady);
        QSignalSpy errors(&w, &MainWindow::errorShown);
        w.loadModel(broken);
        QTRY_VERIFY_WITH_TIMEOUT(errors.count() == 1, k_timeout);
        const QString summary = errors.first().first().toString();
        QVERIFY2(summary.startsWith("File not found: ") && summary.contains("tokenizer.model"), qPrintable(summary));
        QVERIFY(!summary.contains('\n'));
        const QList<QMessageBox*> boxes = w.findChildren<QMessageBox*>("errorBox");
        QCOMPARE(boxes.size(), 1);
        QCOMPARE(boxes.first()->text(), summary);
        QVERIFY(boxes.first()->detailedText().contains("tokenizer model not found"));
        boxes.first()->close();
        w.openImage(m_image);
        w.loadModel(m_model);
        QTRY_VERIFY_WITH_TIMEOUT(ready.count() == 1, k_timeout);
        QCOMPARE(errors.count(), 1);
    }
};

QTEST_MAIN(TestMainWindow)
#include "test_mainwindow.moc"

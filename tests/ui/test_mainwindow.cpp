// Drives the real window offscreen on the generated tiny model: load, run, live preview on the
// ratio slider (overlay pixels change), patch hover tooltip, export (files read back, no silent
// overwrite), and the engine controller's superseding of stale requests.
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

#include "core/make_model.h"
#include "ui/enginecontroller.h"
#include "ui/figuremodel.h"
#include "ui/mainwindow.h"
#include "ui/methodcolumn.h"
#include "ui/overlayview.h"
#include "ui/patch_info.h"

using namespace dlui;

static const int k_timeout = 120000;

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
        QVERIFY(dartView->image() != keptImage);
        QCOMPARE(dartView->image().size(), keptImage.size());
        w.setOverlayMode("kept");
        QCOMPARE(dartView->image(), keptImage);

        // --- hallucination flags against the objects listed ---
        w.setTruthTags("zebra");
        QVERIFY(w.column("none")->answerPlainText().contains("objects:"));

        // --- export: files read back; an existing export is never overwritten silently ---
        QTemporaryDir out;
        const QString dir = out.filePath("export");
        const QStringList files = w.exportTo(dir, false);
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
        bool refused = false;
        try {
            w.exportTo(dir, false);
        } catch (const std::exception&) {
            refused = true;
        }
        QVERIFY(refused);
        QCOMPARE(QFileInfo(QDir(dir).filePath("report.json")).lastModified(), stamp);
        QCOMPARE(w.exportTo(dir, true).size(), files.size());

        // --- errors keep the window usable ---
        w.openImage(m_tmp.filePath("does-not-exist.png"));
        QCOMPARE(errors.count(), 1);
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
        QVERIFY(failed.first().first().toString().contains("picture.png"));
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
        }
        MainWindowOptions opts;  // restore settings, as a user start would
        MainWindow w(opts);
        QSignalSpy ready(&w, &MainWindow::modelReady);
        QTRY_VERIFY_WITH_TIMEOUT(ready.count() == 1, k_timeout);
        QCOMPARE(w.currentRequest().question, std::string("How many objects?"));
        QCOMPARE(w.configFor("dart").ratio, 0.5);
        QCOMPARE(w.configFor("dart").layer, 1);
        QCOMPARE(QString::fromStdString(w.currentRequest().image_path), QFileInfo(m_image).absoluteFilePath());
        w.setRatio(0.625);
        QSettings s;
        QCOMPARE(s.value("ratio").toDouble(), 0.625);
        s.clear();
    }
};

QTEST_MAIN(TestMainWindow)
#include "test_mainwindow.moc"

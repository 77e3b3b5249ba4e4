// Every long stage of the engine can be cancelled and the controller stays usable: loading (per
// weight tensor), the vision tower (per layer), the unpruned trunk of a preview (per layer) and
// decoding (per token, keeping the answer so far). The model is llava-geom-small (LLaVA-1.5's 336
// px / 576 image tokens, 8 decoder layers), so that on a free CPU every stage takes a noticeable
// time (a run takes seconds) and the cancel interrupts real work. Where it lands is not left to
// timing: a progress hook cancels at the nth report of a stage (see cancelAt), so each stage is
// interrupted at one of its own tensor/layer/token boundaries on any machine.
#include <QtTest>

#include <QDir>
#include <QPainter>
#include <QTemporaryDir>

#include <algorithm>
#include <memory>

#include "core/model/make_model.h"
#include "ui/enginecontroller.h"

using namespace dlui;

// generous: on a machine busy with other work a stage of this model can take minutes
static const int k_timeout = 900000;

// Arms `engine` to run `cancel` (on the GUI thread) at the nth progress report of `stage`. The
// hook runs on the worker thread and blocks until the GUI thread has cancelled, so the cancel
// lands inside that stage, at its next tensor/layer/token boundary, however fast the machine.
static void cancelAt(EngineController& engine, const std::string& stage, int nth, std::function<void()> cancel) {
    auto count = std::make_shared<int>(0);
    engine.setProgressHook([&engine, stage, nth, count, cancel](double, const std::string& s) {
        if (s == stage && ++*count == nth) QMetaObject::invokeMethod(&engine, cancel, Qt::BlockingQueuedConnection);
    });
}

class TestEngineCancel : public QObject {
    Q_OBJECT
private:
    QTemporaryDir m_tmp;
    QString m_image;

private slots:
    void initTestCase() {
        QVERIFY(m_tmp.isValid());
        QImage img(160, 112, QImage::Format_RGB888);
        img.fill(QColor(30, 90, 160));
        QPainter p(&img);
        p.fillRect(0, 0, 80, 56, QColor(220, 40, 40));
        p.fillRect(80, 56, 80, 56, QColor(40, 200, 60));
        p.end();
        m_image = m_tmp.filePath("picture.png");
        QVERIFY(img.save(m_image));
    }

    void controllerCancelsEachStage() {
        const QString model = m_tmp.filePath("small-model");
        dl::make_model("llava-geom-small", model.toStdString(), 5);
        EngineController engine;
        QSignalSpy loaded(&engine, &EngineController::modelLoaded);
        QSignalSpy cancelled(&engine, &EngineController::cancelled);
        QSignalSpy failed(&engine, &EngineController::failed);
        QSignalSpy previews(&engine, &EngineController::previewReady);
        QSignalSpy methods(&engine, &EngineController::methodFinished);
        QSignalSpy finished(&engine, &EngineController::runFinished);
        auto cancel = [&engine] { engine.cancel(); };

        // load: cancelled among the weight tensors; no model afterwards, and a new load works
        cancelAt(engine, "weights", 10, cancel);
        engine.loadModel(model, dl::LoadOptions{});
        QTRY_VERIFY_WITH_TIMEOUT(cancelled.count() == 1, k_timeout);
        QTRY_VERIFY_WITH_TIMEOUT(!engine.busy(), k_timeout);
        QCOMPARE(loaded.count(), 0);
        QVERIFY(!engine.hasModel());
        engine.setProgressHook({});
        engine.loadModel(model, dl::LoadOptions{});
        QTRY_VERIFY_WITH_TIMEOUT(loaded.count() == 1, k_timeout);
        QCOMPARE(engine.modelInfo().num_image_tokens, 576);

        dl::RunRequest req;
        req.image_path = m_image.toStdString();
        req.question = "What is in the picture?";
        dl::PruneConfig none;
        dl::PruneConfig dart;
        dart.method = "dart";
        dart.ratio = 0.778;

        // vision tower: cancelled after its first layer
        cancelAt(engine, "vision", 2, cancel);
        engine.preview(req, {none, dart});
        QTRY_VERIFY_WITH_TIMEOUT(cancelled.count() == 2, k_timeout);
        QTRY_VERIFY_WITH_TIMEOUT(!engine.busy(), k_timeout);
        // unpruned trunk of a preview: cancelled before its third layer
        cancelAt(engine, "prefill", 3, cancel);
        engine.preview(req, {none, dart});
        QTRY_VERIFY_WITH_TIMEOUT(cancelled.count() == 3, k_timeout);
        QTRY_VERIFY_WITH_TIMEOUT(!engine.busy(), k_timeout);
        QCOMPARE(previews.count(), 0);

        // decode: the answer so far still arrives, marked cancelled; the other methods never run
        cancelAt(engine, "decode", 3, cancel);
        engine.run(req, {dart, none}, 32);
        QTRY_VERIFY_WITH_TIMEOUT(cancelled.count() == 4, k_timeout);
        QTRY_VERIFY_WITH_TIMEOUT(!engine.busy(), k_timeout);
        QCOMPARE(finished.count(), 0);
        QCOMPARE(methods.count(), 1);
        const dl::MethodRun partial = methods.first().at(2).value<dl::MethodRun>();
        QVERIFY(partial.cancelled);
        QCOMPARE(int(partial.output_ids.size()), 3);

        // still usable: a preview and a full run succeed
        engine.setProgressHook({});
        engine.preview(req, {none, dart});
        QTRY_VERIFY_WITH_TIMEOUT(previews.count() == 1, k_timeout);
        engine.run(req, {none, dart}, 4);
        QTRY_VERIFY_WITH_TIMEOUT(finished.count() == 1, k_timeout);
        const auto runs = finished.first().at(1).value<QVector<dl::MethodRun>>();
        QCOMPARE(runs.size(), 2);
        for (const dl::MethodRun& r : runs) QVERIFY(!r.cancelled && !r.output_ids.empty());
        // the partial answer is the start of the full one
        const std::vector<int>& whole = runs[1].output_ids;
        QVERIFY(whole.size() >= 3);
        QVERIFY(std::equal(partial.output_ids.begin(), partial.output_ids.end(), whole.begin()));  // greedy
        QCOMPARE(failed.count(), 0);
        QDir(model).removeRecursively();
    }
};

int main(int argc, char** argv) {
    // QtTest aborts a test function after 5 minutes; this one runs a 576-token model several times
    if (!qEnvironmentVariableIsSet("QTEST_FUNCTION_TIMEOUT")) qputenv("QTEST_FUNCTION_TIMEOUT", "1800000");
    QCoreApplication app(argc, argv);
    TestEngineCancel test;
    return QTest::qExec(&test, argc, argv);
}

#include "test_engine_cancel.moc"

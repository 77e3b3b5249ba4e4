// The application as a user starts it: first start without settings opens the bundled demo and
// runs it; `dartlens --screenshot` renders the window to a PNG and exits (offscreen).
#include <QtTest>

#include <QProcess>
#include <QStandardPaths>
#include <QTemporaryDir>

#include "core/model/make_model.h"
#include "ui/demo.h"
#include "ui/mainwindow.h"
#include "ui/methodcolumn.h"

using namespace dlui;

class TestApp : public QObject {
    Q_OBJECT
private:
    QTemporaryDir m_tmp;
    QString m_model;

private slots:
    void initTestCase() {
        QStandardPaths::setTestModeEnabled(true);
        m_model = m_tmp.filePath("demo-model");
        dl::make_model("tiny", m_model.toStdString(), 3);
    }

    void firstStartOpensDemo() {
        QSettings().clear();
        qputenv("DARTLENS_DEMO_MODEL", m_model.toUtf8());
        QCOMPARE(bundled_demo_model_dir(), QDir(m_model).absolutePath());
        MainWindow w;  // default options: restore settings; none saved -> demo
        w.show();
        QSignalSpy done(&w, &MainWindow::runCompleted);
        QTRY_VERIFY_WITH_TIMEOUT(done.count() == 1, 120000);
        QVERIFY(w.hasResults());
        QVERIFY(!w.currentRequest().image_path.empty());
        // the demo's model is remembered for the next start
        QCOMPARE(QSettings().value("model/dir").toString(), QDir(m_model).absolutePath());
        QSettings().clear();
        qunsetenv("DARTLENS_DEMO_MODEL");
    }

    void generatedDemoModel() {
        // no bundled model: the demo is generated into the (test-mode) app data dir
        const QString dir = generated_demo_model_dir();
        QDir(dir).removeRecursively();
        QCOMPARE(generate_demo_model(dir), QString());
        QVERIFY(is_model_dir(dir));
        QDir(dir).removeRecursively();
    }

    void screenshotMode() {
        const QString bin = qEnvironmentVariable("DARTLENS_BIN_DIR", QCoreApplication::applicationDirPath());
        const QString png = m_tmp.filePath("shot.png");
        QImage picture(200, 150, QImage::Format_RGB888);
        picture.fill(QColor(200, 120, 40));
        const QString image = m_tmp.filePath("in.png");
        QVERIFY(picture.save(image));
        QProcess p;
        QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
        env.insert("QT_QPA_PLATFORM", "offscreen");
        p.setProcessEnvironment(env);
        p.start(bin + "/dartlens", {"--screenshot", png, "--model", m_model, "--image", image, "--question",
                                    "What color is it?", "--run", "--timeout", "100"});
        QVERIFY(p.waitForFinished(120000));
        QVERIFY2(p.exitCode() == 0, p.readAllStandardError().constData());
        QImage shot(png);
        QVERIFY(!shot.isNull());
        QVERIFY(shot.width() >= 800 && shot.height() >= 500);
        // the picture's colour shows up in the rendered columns
        int hits = 0;
        for (int y = 0; y < shot.height(); y += 4)
            for (int x = 0; x < shot.width(); x += 4) hits += shot.pixelColor(x, y) == QColor(200, 120, 40);
        QVERIFY2(hits > 100, qPrintable(QString::number(hits)));

        // a bad input ends the process with an error, not a hang
        QProcess bad;
        bad.setProcessEnvironment(env);
        bad.start(bin + "/dartlens", {"--screenshot", png, "--model", m_model, "--image", "/nonexistent.png"});
        QVERIFY(bad.waitForFinished(60000));
        QVERIFY(bad.exitCode() != 0);
        QVERIFY(bad.readAllStandardError().contains("nonexistent.png"));
    }
};

QTEST_MAIN(TestApp)
#include "test_app.moc"

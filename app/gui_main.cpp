// dartlens: the Qt desktop explorer. A thin entry point over ui/mainwindow.h.
//
//   dartlens                                   restore the last session (first start: the demo)
//   dartlens --model DIR --image F [--question Q] [--run]
//   dartlens --screenshot FILE [--model DIR --image F --question Q --run]
//       renders the window once the model is loaded (after the run with --run) to a PNG and
//       exits; works with QT_QPA_PLATFORM=offscreen and under xvfb-run. Without --model/--image
//       the bundled demo is used.
#include <QApplication>
#include <QCommandLineParser>
#include <QDir>
#include <QFileInfo>
#include <QTimer>
#include <cstdio>

#include "ui/demo.h"
#include "ui/enginecontroller.h"
#include "ui/mainwindow.h"
#include "app/runtime_defaults.h"

bool dl_app::runtime_defaults_wanted(char**) { return true; }  // the GUI always computes

int main(int argc, char** argv) {
    QApplication app(argc, argv);
    QApplication::setOrganizationName("DartLens");
    QApplication::setApplicationName("dartlens");
    QApplication::setApplicationVersion("0.1.0");

    QCommandLineParser parser;
    parser.setApplicationDescription("DartLens: compare vision-token pruning methods (DART, FastV) on LLaVA-1.5 and LLaVA-NeXT");
    parser.addHelpOption();
    parser.addVersionOption();
    QCommandLineOption screenshot("screenshot", "Render the window to FILE (PNG) and exit.", "FILE");
    QCommandLineOption model("model", "llava-hf model directory.", "DIR");
    QCommandLineOption image("image", "Image file.", "FILE");
    QCommandLineOption question("question", "Question about the image.", "TEXT");
    QCommandLineOption run("run", "Run the comparison once the model is loaded.");
    QCommandLineOption ratio("ratio", "Reduction ratio R in [0,1].", "R");
    QCommandLineOption timeout("timeout", "Screenshot mode: give up after SECONDS (default 600).", "SECONDS", "600");
    QCommandLineOption evalDir("eval", "Open the benchmark view on a dartlens-cli eval output directory.", "DIR");
    parser.addOptions({screenshot, model, image, question, run, ratio, timeout, evalDir});
    parser.process(app);

    const bool shot = parser.isSet(screenshot);
    const bool explicitInputs = parser.isSet(model) || parser.isSet(image);
    dlui::MainWindowOptions options;
    options.restoreSettings = !shot && !explicitInputs;
    options.openDemoIfFirstStart = options.restoreSettings;
    dlui::MainWindow window(options);
    if (parser.isSet(question)) window.setQuestion(parser.value(question));
    if (parser.isSet(ratio)) window.setRatio(parser.value(ratio).toDouble());
    window.show();

    if (shot) {
        const QString file = parser.value(screenshot);
        const bool wantRun = parser.isSet(run);
        auto save = [&window, file] {
            QApplication::processEvents();
            const bool ok = window.grab().save(file, "PNG");
            std::fprintf(ok ? stdout : stderr, ok ? "screenshot: %s\n" : "screenshot: cannot write %s\n",
                         qPrintable(file));
            QApplication::exit(ok ? 0 : 1);
        };
        // render once the requested state is on screen: after the run, or after the first preview
        QObject::connect(&window, wantRun ? &dlui::MainWindow::runCompleted : &dlui::MainWindow::previewUpdated,
                         &window, [save] { QTimer::singleShot(200, save); });
        QObject::connect(&window, &dlui::MainWindow::errorShown, &window, [](QString message) {
            std::fprintf(stderr, "dartlens: %s\n", qPrintable(message));
            QApplication::exit(1);
        });
        QTimer::singleShot(parser.value(timeout).toInt() * 1000, &window, [] {
            std::fprintf(stderr, "dartlens: screenshot timed out\n");
            QApplication::exit(2);
        });
        // start once the event loop runs, so that an early error can end it
        QTimer::singleShot(0, &window, [&window, &parser, &model, &image, wantRun] {
            if (!parser.isSet(model) && !parser.isSet(image)) {
                window.openDemo(wantRun);
            } else {
                if (parser.isSet(image)) window.openImage(parser.value(image));
                if (parser.isSet(model)) window.loadModel(parser.value(model));
                if (wantRun) window.runNow();  // queued until the model is ready
            }
        });
    } else if (explicitInputs) {
        if (parser.isSet(image)) window.openImage(parser.value(image));
        if (parser.isSet(model)) window.loadModel(parser.value(model));
        if (parser.isSet(run)) window.runNow();
    }
    if (parser.isSet(evalDir)) window.openEvalResults(parser.value(evalDir));
    return app.exec();
}

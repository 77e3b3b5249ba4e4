// Demo model and sample image lookup (see demo.h).
#include "ui/demo.h"

#include <QCoreApplication>
#include <QDir>
#include <QFileInfo>
#include <QImage>
#include <QPainter>
#include <QProcess>
#include <QStandardPaths>
#include <exception>

#include "core/scenes/scenes.h"

#if __has_include("core/model/make_model.h")
#include "core/model/make_model.h"
#define DARTLENS_HAVE_MAKE_MODEL 1
#endif

namespace dlui {

bool is_model_dir(const QString& dir) { return !dir.isEmpty() && QFileInfo(QDir(dir).filePath("config.json")).isFile(); }

QString bundled_demo_model_dir() {
    const QString env = qEnvironmentVariable("DARTLENS_DEMO_MODEL");
    if (is_model_dir(env)) return QDir(env).absolutePath();
    const QString rel = QDir(QCoreApplication::applicationDirPath()).filePath("../demo-model");
    if (is_model_dir(rel)) return QDir(rel).absolutePath();
#ifdef DARTLENS_SOURCE_DIR
    // the trained dartlens-shapes model of the source tree (tools/shapes)
    const QString src = QDir(QStringLiteral(DARTLENS_SOURCE_DIR)).filePath("resources/models/dartlens-shapes");
    if (is_model_dir(src)) return QDir(src).absolutePath();
#endif
    return "";
}

QString generated_demo_model_dir() {
    return QDir(QStandardPaths::writableLocation(QStandardPaths::AppLocalDataLocation)).filePath("demo-model");
}

QString sample_image_path() {
    QStringList candidates;
    const QString env = qEnvironmentVariable("DARTLENS_RESOURCES");
    if (!env.isEmpty()) candidates << QDir(env).filePath("sample.jpg");
    candidates << QDir(QCoreApplication::applicationDirPath()).filePath("../resources/sample.jpg");
#ifdef DARTLENS_SOURCE_DIR
    candidates << QDir(QStringLiteral(DARTLENS_SOURCE_DIR)).filePath("resources/sample.jpg");
#endif
    for (const QString& c : candidates)
        if (QFileInfo(c).isFile()) return QFileInfo(c).absoluteFilePath();
    return "";
}

QString demo_scene_image() {
    const QString dir = QDir(QStandardPaths::writableLocation(QStandardPaths::AppLocalDataLocation)).filePath("demo-scenes");
    const QString path = QDir(dir).filePath("scene_000000.png");
    if (QFileInfo(path).isFile() && QFileInfo(QDir(dir).filePath("scenes.jsonl")).isFile()) return path;
    try {
        QDir().mkpath(dir);
        dl::ScenesArgs a;
        a.count = 8, a.seed = 2026, a.width = 336, a.height = 336, a.out_dir = dir.toStdString(), a.overwrite = true;
        dl::scenes_write(a);
    } catch (const std::exception&) {
        return "";
    }
    return QFileInfo(path).isFile() ? path : QString();
}

QString synthetic_demo_image() {
    const QString dir = QStandardPaths::writableLocation(QStandardPaths::AppLocalDataLocation);
    const QString path = QDir(dir).filePath("demo-picture.png");
    if (QFileInfo(path).isFile()) return path;
    QDir().mkpath(dir);
    // sky, grass, sun, a red kite and a dog-ish shape: objects to ask about
    QImage img(640, 480, QImage::Format_RGB888);
    QPainter p(&img);
    p.setRenderHint(QPainter::Antialiasing);
    p.fillRect(0, 0, 640, 300, QColor(120, 180, 235));
    p.fillRect(0, 300, 640, 180, QColor(70, 160, 60));
    p.setPen(Qt::NoPen);
    p.setBrush(QColor(250, 220, 40));
    p.drawEllipse(QPoint(520, 90), 50, 50);
    p.setBrush(QColor(210, 40, 40));
    p.drawPolygon(QPolygon({QPoint(150, 60), QPoint(200, 120), QPoint(150, 180), QPoint(100, 120)}));
    p.setBrush(QColor(120, 80, 40));
    p.drawEllipse(QRect(260, 320, 150, 70));
    p.drawEllipse(QRect(390, 300, 60, 50));
    p.end();
    return img.save(path) ? path : QString();
}

QString generate_demo_model(const QString& dir) {
    try {
        QDir().mkpath(dir);
#ifdef DARTLENS_HAVE_MAKE_MODEL
        dl::make_model("tiny", dir.toStdString(), 0);
        return is_model_dir(dir) ? QString() : "make_model wrote no config.json into " + dir;
#else
        // fall back on the CLI next to this executable
        QProcess p;
        const QString cli = QDir(QCoreApplication::applicationDirPath()).filePath("dartlens-cli");
        p.start(cli, {"make-model", "--preset", "tiny", "--out", dir});
        if (!p.waitForFinished(600000) || p.exitCode() != 0)
            return "dartlens-cli make-model failed: " + QString::fromLocal8Bit(p.readAllStandardError()).trimmed();
        return is_model_dir(dir) ? QString() : "make-model wrote no config.json into " + dir;
#endif
    } catch (const std::exception& e) {
        return QString::fromUtf8(e.what());
    }
}

}  // namespace dlui

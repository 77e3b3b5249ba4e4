// The DartLens explorer window: inputs and pruning controls on the left, one column per method
// (unpruned, DART, FastV, optional random) in the middle, latency chart and figure table below.
//
// The window wires four objects and holds no results of its own: every request goes to the
// EngineController (worker thread); what came back, which answers are stale and whether a change
// regenerates them live in the RunState model; the pictures are drawn by the OverlayRenderer and
// the files written by the Exporter (pool threads). Widgets update from their signals. Moving the
// reduction-ratio slider previews every method's selection at once (Session::preview, from the
// prefix cache) and marks the answers it no longer matches as stale. The answers regenerate
// (Session::run, only the methods whose configuration changed) on Run, or by themselves after a
// change only while the last run took less than the auto-run threshold (QSettings
// "autoRunThresholdMs", 2000 ms by default, 0 = never): a 7B model must not generate on every
// slider move. The public slots are what menus, shortcuts, tests and --screenshot use.
#pragma once

#include <QMainWindow>
#include <QPointer>
#include <QSettings>
#include <QStringList>
#include <QVector>
#include <memory>

#include "core/api.h"
#include "core/render/overlay.h"
#include "ui/figuremodel.h"

class QCheckBox;
class QChart;
class QChartView;
class QComboBox;
class QDoubleSpinBox;
class QLabel;
class QLineEdit;
class QMenu;
class QProgressBar;
class QPushButton;
class QSlider;
class QSpinBox;
class QSplitter;
class QTableView;

namespace dlui {

class BenchmarkView;
class EngineController;
class Exporter;
class MethodColumn;
class OverlayRenderer;
class RunState;
struct OverlayFrames;

struct MainWindowOptions {
    bool restoreSettings = true;     // read QSettings (last model, image, parameters, geometry)
    bool openDemoIfFirstStart = true;  // no saved model: open the bundled demo (and run it)
};

class MainWindow : public QMainWindow {
    Q_OBJECT
public:
    explicit MainWindow(const MainWindowOptions& options = {}, QWidget* parent = nullptr);
    ~MainWindow() override;

    EngineController* engine() const { return m_engine; }
    RunState* runState() const { return m_state; }
    OverlayRenderer* renderer() const { return m_renderer; }
    Exporter* exporter() const { return m_exporter; }
    QVector<MethodColumn*> columns() const { return m_columns; }
    MethodColumn* column(const QString& method) const;
    FigureModel* figureModel() const { return m_figureModel; }
    QSlider* ratioSlider() const { return m_ratioSlider; }
    QChart* chart() const;

    // Current pruning configuration of a column's method ("none", "dart", "fastv", "random").
    dl::PruneConfig configFor(const QString& method) const;
    dl::RunRequest currentRequest() const;
    const dl::ImageGeometry& imageGeometry() const { return m_geometry; }
    const dl::PruningResult* resultFor(const QString& method) const;
    const dl::MethodRun* runFor(const QString& method) const;
    QString keptText() const;
    bool hasResults() const;  // every visible column has a current run

    // Changes regenerate the answers by themselves only while the last run (Run, or an automatic
    // one) took less than this many ms; 0 = never. Saved as QSettings "autoRunThresholdMs".
    int autoRunThresholdMs() const;
    void setAutoRunThresholdMs(int ms);
    qint64 lastRunMs() const;  // wall time of the last finished run, -1 = none

    // Starts exporting the current comparison into dir on the exporter's thread: exportFinished
    // (files) or an error (exportFailed, errorShown: one line) follows. overwrite=false never
    // replaces a file. Returns false, after showing why, when there is nothing to export.
    bool exportTo(const QString& dir, bool overwrite);

public slots:
    void openImage(const QString& path);
    void loadModel(const QString& dir);
    void setQuestion(const QString& question);
    // The benchmark view (a window of its own) on a dartlens-cli eval output directory ("" = a
    // file dialog from the view); double-clicked questions open here.
    BenchmarkView* openEvalResults(const QString& dir);
    void setRatio(double ratio);       // reduction ratio R in [0,1]
    void setTruthTags(const QString& tags);
    void setOverlayMode(const QString& mode);  // kept | dup | fastv | keynorm
    void setRandomVisible(bool on);
    void runNow();                     // Ctrl+R: regenerate answers of stale columns
    void measureCold();                // every visible method without the prefix cache: measured timings
    void requestPreview();
    void cancelWork();
    void exportInteractive();          // Ctrl+E
    void openImageDialog();            // Ctrl+O
    void openModelDialog();            // Ctrl+M
    void openDemo(bool run);           // bundled demo model + sample image

signals:
    void modelReady();
    // These two are emitted once the pictures of that preview / run are on screen.
    void previewUpdated();
    void runCompleted();
    void errorShown(QString message);
    void exportFinished(QStringList files);
    void exportFailed(QString summary);

protected:
    void closeEvent(QCloseEvent* event) override;
    void dragEnterEvent(QDragEnterEvent* event) override;
    void dropEvent(QDropEvent* event) override;

private:
    void buildUi();
    void buildMenus();
    QWidget* buildInputsPanel();
    QWidget* buildControlsPanel();
    void restoreSettings();
    void saveSettings();
    void rebuildColumns();
    void updateModelLabels();
    void updateOverlays();                 // asks the renderer for the columns' pictures
    void showFrames(quint64 generation, const OverlayFrames& frames);
    void updateAnswers();
    void updateFigures();
    void updateChart();
    void updateKeptLabel();
    void updateSubtitles();
    void addRecentImage(const QString& path);
    void rebuildRecentMenu();
    void onParametersChanged();          // preview now; run after a pause if auto-run is allowed
    void syncRunState();                 // tells the model what the controls say now
    void startRun(bool usePrefixCache);
    void onPatchHovered(int index, QPoint globalPos);
    // One line in the status bar and a message box; details (the engine's full message) behind
    // the box's "Show Details..." button.
    void showError(const QString& summary, const QString& details = QString());
    QString inputsKey() const;
    QString runKey(const QString& method) const;
    QStringList visibleMethods() const;
    dl::OverlayOptions overlayOptions() const;
    int columnIndex(const QString& method) const;
    void loadModelWithOptions(const QString& dir);

    EngineController* m_engine = nullptr;
    RunState* m_state = nullptr;
    OverlayRenderer* m_renderer = nullptr;
    Exporter* m_exporter = nullptr;
    MainWindowOptions m_options;

    // inputs
    QLabel* m_imageLabel = nullptr;
    QLabel* m_modelLabel = nullptr;
    QLabel* m_randomWeightsLabel = nullptr;
    QLineEdit* m_question = nullptr;
    QComboBox* m_template = nullptr;
    QComboBox* m_device = nullptr;
    QComboBox* m_dtype = nullptr;
    QSpinBox* m_threads = nullptr;
    QProgressBar* m_progress = nullptr;
    QLabel* m_stage = nullptr;
    QPushButton* m_cancel = nullptr;
    QPushButton* m_runButton = nullptr;
    QSpinBox* m_autoRunThreshold = nullptr;
    QMenu* m_recentMenu = nullptr;

    // controls
    QSlider* m_ratioSlider = nullptr;
    QDoubleSpinBox* m_ratioSpin = nullptr;
    QLabel* m_keptLabel = nullptr;
    QSpinBox* m_pivotsImage = nullptr;
    QSpinBox* m_pivotsText = nullptr;
    QSpinBox* m_layer = nullptr;
    QComboBox* m_criterion = nullptr;
    QComboBox* m_order = nullptr;
    QComboBox* m_fastvScore = nullptr;
    QSpinBox* m_maxNewTokens = nullptr;
    QCheckBox* m_showRandom = nullptr;
    QComboBox* m_overlayMode = nullptr;
    QComboBox* m_tokenView = nullptr;  // LLaVA-NeXT: tiles | base
    QLineEdit* m_truthTags = nullptr;
    std::string m_vocabularyName = "coco";  // "scenes" for a scene-world picture
    QPointer<BenchmarkView> m_benchmark;

    // results
    QSplitter* m_columnSplitter = nullptr;
    QVector<MethodColumn*> m_columns;
    QChartView* m_chartView = nullptr;
    QLabel* m_chartNote = nullptr;      // what the hatched (composed) bar segments mean
    QTableView* m_table = nullptr;
    FigureModel* m_figureModel = nullptr;

    // state (results: RunState)
    QString m_modelDir, m_imagePath;
    QStringList m_recentImages;
    bool m_modelLoaded = false;
    bool m_runAfterLoad = false;
    dl::ModelInfo m_modelInfo;
    dl::PromptInfo m_prompt;
    dl::ImageGeometry m_geometry;
    bool m_prepared = false;
    std::shared_ptr<const dl::RgbImage> m_original;  // shared with the renderer and the exporter
    // previewUpdated / runCompleted wait for the pictures requested after them (render generation)
    quint64 m_previewShownAt = 0, m_runShownAt = 0, m_renderGen = 0;
    bool m_updatingControls = false;
};

}  // namespace dlui

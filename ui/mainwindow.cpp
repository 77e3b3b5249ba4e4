// The explorer window (see mainwindow.h).
#include "ui/mainwindow.h"

#include <QAction>
#include <QApplication>
#include <QBarCategoryAxis>
#include <QBarSet>
#include <QChart>
#include <QChartView>
#include <QCheckBox>
#include <QCloseEvent>
#include <QComboBox>
#include <QCursor>
#include <QDir>
#include <QDockWidget>
#include <QDoubleSpinBox>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QFutureWatcher>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QMenuBar>
#include <QMessageBox>
#include <QMimeData>
#include <QProgressBar>
#include <QPushButton>
#include <QScrollArea>
#include <QSlider>
#include <QSpinBox>
#include <QSplitter>
#include <QStackedBarSeries>
#include <QStatusBar>
#include <QTableView>
#include <QToolBar>
#include <QToolTip>
#include <QValueAxis>
#include <QVBoxLayout>
#include <QtConcurrent/QtConcurrentRun>

#include "core/render/export.h"
#include "core/render/overlay.h"
#include "ui/answer_analysis.h"
#include "ui/benchmark_view.h"
#include "ui/demo.h"
#include "ui/enginecontroller.h"
#include "ui/exporter.h"
#include "ui/methodcolumn.h"
#include "ui/overlayrenderer.h"
#include "ui/overlayview.h"
#include "ui/patch_info.h"
#include "ui/runstate.h"

namespace dlui {

namespace {

struct MethodSpec {
    const char* method;
    const char* title;
};
const MethodSpec k_methods[] = {
    {"none", "Unpruned"}, {"dart", "DART"}, {"fastv", "FastV"}, {"random", "Random"}};

// Longest side of the picture the columns show; bigger photos are scaled down for display only
// (exports use the original).
constexpr int k_display_max = 1280;

void set_tip(QWidget* w, const char* tip) { w->setToolTip(QString::fromUtf8(tip)); }

}  // namespace

MainWindow::MainWindow(const MainWindowOptions& options, QWidget* parent)
    : QMainWindow(parent), m_options(options) {
    setWindowTitle("DartLens — vision-token pruning explorer");
    setObjectName("DartLensMainWindow");
    setAcceptDrops(true);
    m_engine = new EngineController(this);
    m_state = new RunState(this);
    m_renderer = new OverlayRenderer(this);
    m_exporter = new Exporter(this);
    buildUi();
    buildMenus();

    // the model decides, the widgets follow
    connect(m_state, &RunState::selectionsChanged, this, [this] {
        updateKeptLabel();
        updateOverlays();
    });
    connect(m_state, &RunState::runsChanged, this, &MainWindow::updateFigures);
    connect(m_state, &RunState::answersChanged, this, &MainWindow::updateAnswers);
    connect(m_state, &RunState::runFinished, this, [this] {
        updateFigures();
        updateAnswers();
        updateChart();
        statusBar()->showMessage("run finished", 5000);
        m_runShownAt = m_renderGen;  // runCompleted once its pictures are on screen
        if (!m_renderer->busy()) {
            m_runShownAt = 0;
            emit runCompleted();
        }
    });
    connect(m_state, &RunState::staleAnswersKept, this,
            [this] { statusBar()->showMessage("answers are stale: press Run (Ctrl+R)", 5000); });
    connect(m_state, &RunState::autoRunDue, this, [this] {
        if (m_modelLoaded && !m_imagePath.isEmpty()) runNow();
    });
    connect(m_renderer, &OverlayRenderer::framesReady, this, &MainWindow::showFrames);
    connect(m_exporter, &Exporter::finished, this, [this](quint64, QStringList files) {
        const QString dir = files.isEmpty() ? QString() : QFileInfo(files.first()).path();
        statusBar()->showMessage(QString("exported %1 files to %2").arg(files.size()).arg(dir), 8000);
        emit exportFinished(files);
    });
    connect(m_exporter, &Exporter::failed, this, [this](quint64, QString summary, QString details) {
        showError(summary, details);
        emit exportFailed(summary);
    });

    connect(m_engine, &EngineController::started, this, [this](quint64, QString what) {
        m_progress->setVisible(true);
        m_progress->setValue(0);
        m_stage->setText(what + "…");
        m_cancel->setEnabled(true);
    });
    connect(m_engine, &EngineController::progress, this, [this](double f, QString stage) {
        m_progress->setRange(0, 1000);
        m_progress->setValue(int(f * 1000));
        m_stage->setText(stage);
    });
    connect(m_engine, &EngineController::idle, this, [this] {
        m_progress->setValue(m_progress->maximum());
        m_progress->setVisible(false);
        m_stage->setText("ready");
        m_cancel->setEnabled(false);
    });
    connect(m_engine, &EngineController::modelLoaded, this, [this](dl::ModelInfo info) {
        m_modelLoaded = true;
        m_modelInfo = info;
        updateModelLabels();
        saveSettings();
        emit modelReady();
        statusBar()->showMessage("model loaded: " + QString::fromStdString(info.name), 5000);
        if (m_runAfterLoad && !m_imagePath.isEmpty()) runNow();
        else requestPreview();
        m_runAfterLoad = false;
    });
    connect(m_engine, &EngineController::prepared, this, [this](dl::PromptInfo prompt, dl::ImageGeometry g) {
        m_prompt = prompt;
        m_geometry = g;
        m_prepared = true;
        m_tokenView->setEnabled(!g.tokens.empty());
    });
    connect(m_engine, &EngineController::previewReady, this, [this](quint64 gen, QVector<dl::PruningResult> results) {
        // the selection (kept counts, then the pictures) follows at once through selectionsChanged
        if (m_state->previewArrived(gen, results)) m_previewShownAt = m_renderGen;
    });
    connect(m_engine, &EngineController::methodFinished, this,
            [this](quint64 gen, int slot, dl::MethodRun run) { m_state->methodArrived(gen, slot, run); });
    connect(m_engine, &EngineController::runFinished, this,
            [this](quint64 gen, QVector<dl::MethodRun>) { m_state->runArrived(gen); });
    connect(m_engine, &EngineController::failed, this, [this](QString summary, QString details) {
        if (!m_modelLoaded) {
            m_modelLabel->setText("<i>no model</i>");
            m_runAfterLoad = false;
        }
        showError(summary, details);
    });
    connect(m_engine, &EngineController::cancelled, this, [this] {
        statusBar()->showMessage("cancelled", 5000);
        if (!m_modelLoaded) m_modelLabel->setText("<i>loading cancelled</i>");
        updateAnswers();  // a run cancelled during decode left its partial answers
    });

    if (m_options.restoreSettings) restoreSettings();
    syncRunState();
}

MainWindow::~MainWindow() = default;

// --- layout -------------------------------------------------------------------------------------

void MainWindow::buildUi() {
    auto* central = new QSplitter(Qt::Vertical, this);
    central->setObjectName("centralSplitter");
    m_columnSplitter = new QSplitter(Qt::Horizontal, central);
    m_columnSplitter->setObjectName("columnSplitter");
    for (const MethodSpec& spec : k_methods) {
        auto* col = new MethodColumn(spec.title, spec.method, m_columnSplitter);
        m_columns.push_back(col);
        m_columnSplitter->addWidget(col);
        connect(col->view(), &OverlayView::patchHovered, this, &MainWindow::onPatchHovered);
    }
    m_columns.back()->setVisible(false);  // random: off by default

    auto* bottom = new QSplitter(Qt::Horizontal, central);
    auto* chart = new QChart;
    chart->setTitle("Latency per method (ms)");
    chart->legend()->setAlignment(Qt::AlignBottom);
    auto* chartBox = new QWidget(bottom);
    auto* chartLayout = new QVBoxLayout(chartBox);
    chartLayout->setContentsMargins(0, 0, 0, 0);
    m_chartView = new QChartView(chart, chartBox);
    m_chartView->setObjectName("latencyChart");
    m_chartView->setRenderHint(QPainter::Antialiasing);
    m_chartView->setMinimumHeight(240);
    m_chartNote = new QLabel(QString::fromUtf8(
        "<small>Hatched: composed, not measured by that run: the per-layer times measured when the prefix "
        "cache was filled, added up (vision, layers &lt; K). Run ▸ Measure cold times every stage.</small>"));
    m_chartNote->setObjectName("chartNote");
    m_chartNote->setWordWrap(true);
    m_chartNote->setVisible(false);
    chartLayout->addWidget(m_chartView, 1);
    chartLayout->addWidget(m_chartNote);
    m_figureModel = new FigureModel(this);
    m_table = new QTableView(bottom);
    m_table->setObjectName("figureTable");
    m_table->setModel(m_figureModel);
    m_table->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    m_table->verticalHeader()->setVisible(false);
    bottom->addWidget(chartBox);
    bottom->addWidget(m_table);
    bottom->setStretchFactor(0, 2);
    bottom->setStretchFactor(1, 3);
    m_chartView->setMinimumWidth(380);
    central->addWidget(m_columnSplitter);
    central->addWidget(bottom);
    central->setStretchFactor(0, 3);
    central->setStretchFactor(1, 1);
    setCentralWidget(central);

    auto* panel = new QWidget;
    auto* pl = new QVBoxLayout(panel);
    pl->addWidget(buildInputsPanel());
    pl->addWidget(buildControlsPanel());
    pl->addStretch(1);
    auto* scroll = new QScrollArea;
    scroll->setWidget(panel);
    scroll->setWidgetResizable(true);
    scroll->setMinimumWidth(330);
    auto* dock = new QDockWidget("Inputs and parameters", this);
    dock->setObjectName("parametersDock");
    dock->setWidget(scroll);
    dock->setFeatures(QDockWidget::DockWidgetMovable | QDockWidget::DockWidgetFloatable);
    addDockWidget(Qt::LeftDockWidgetArea, dock);

    m_stage = new QLabel("ready");
    statusBar()->addPermanentWidget(m_stage);
    resize(1500, 950);
}

QWidget* MainWindow::buildInputsPanel() {
    auto* box = new QGroupBox("Inputs");
    auto* form = new QFormLayout(box);

    auto* imageRow = new QHBoxLayout;
    m_imageLabel = new QLabel("<i>no image</i>");
    m_imageLabel->setWordWrap(true);
    auto* openImage = new QPushButton("Open…");
    openImage->setToolTip("Open an image (Ctrl+O); you can also drop a file on the window");
    connect(openImage, &QPushButton::clicked, this, &MainWindow::openImageDialog);
    imageRow->addWidget(m_imageLabel, 1);
    imageRow->addWidget(openImage);
    form->addRow("Image", imageRow);

    auto* openModel = new QPushButton("Open model directory…");
    openModel->setToolTip("Open a llava-hf model directory (Ctrl+M); or drop the folder on the window");
    connect(openModel, &QPushButton::clicked, this, &MainWindow::openModelDialog);
    form->addRow("Model", openModel);
    m_modelLabel = new QLabel("<i>no model</i>");
    m_modelLabel->setObjectName("modelLabel");
    m_modelLabel->setWordWrap(true);
    m_modelLabel->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_modelLabel->setSizePolicy(QSizePolicy::Preferred, QSizePolicy::Minimum);
    form->addRow(m_modelLabel);
    m_randomWeightsLabel = new QLabel("<b style=\"color:#c00000;\">random weights (demo)</b>");
    m_randomWeightsLabel->setObjectName("randomWeightsLabel");
    m_randomWeightsLabel->setToolTip("This checkpoint was generated by make-model with random weights: "
                                     "answers are gibberish, but every pruning computation is real.");
    m_randomWeightsLabel->setVisible(false);
    form->addRow("", m_randomWeightsLabel);

    m_question = new QLineEdit("Describe the image in detail.");
    m_question->setObjectName("question");
    connect(m_question, &QLineEdit::editingFinished, this, [this] {
        if (m_updatingControls) return;
        syncRunState();  // marks stale answers
        requestPreview();
    });
    form->addRow("Question", m_question);

    m_template = new QComboBox;
    m_template->addItems({"llava_v1", "llava-hf"});
    m_template->setToolTip("Prompt template: llava_v1 (\"USER: <image>\\n… ASSISTANT:\" with the LLaVA-1.5 "
                           "system prompt) or llava-hf (the processor's chat template)");
    connect(m_template, &QComboBox::currentTextChanged, this, [this] {
        if (m_updatingControls) return;
        syncRunState();
        requestPreview();
    });
    form->addRow("Template", m_template);

    m_device = new QComboBox;
    m_device->addItems({"auto", "cpu", "cuda"});
    m_dtype = new QComboBox;
    m_dtype->addItems({"auto", "f32", "bf16", "f16"});
    m_threads = new QSpinBox;
    m_threads->setRange(0, 256);
    m_threads->setSpecialValueText("all cores");
    auto* devRow = new QHBoxLayout;
    devRow->addWidget(m_device);
    devRow->addWidget(m_dtype);
    devRow->addWidget(m_threads);
    form->addRow("Device", devRow);
    m_device->setToolTip("Compute device (applies when the model is (re)loaded)");
    m_dtype->setToolTip("Compute dtype: auto = f32 on CPU, f16 on CUDA (applies on load)");
    m_threads->setToolTip("CPU threads for LibTorch (applies on load)");
    auto* reload = new QPushButton("Reload model");
    reload->setToolTip("Reload the model with the device, dtype and threads above");
    connect(reload, &QPushButton::clicked, this, [this] {
        if (!m_modelDir.isEmpty()) loadModel(m_modelDir);
    });
    form->addRow("", reload);

    auto* progRow = new QHBoxLayout;
    m_progress = new QProgressBar;
    m_progress->setObjectName("progress");
    m_progress->setRange(0, 1000);
    m_progress->setVisible(false);
    m_cancel = new QPushButton("Cancel");
    m_cancel->setObjectName("cancelButton");
    m_cancel->setEnabled(false);
    m_cancel->setToolTip("Stop the running load or run (Esc)");
    connect(m_cancel, &QPushButton::clicked, this, &MainWindow::cancelWork);
    progRow->addWidget(m_progress, 1);
    progRow->addWidget(m_cancel);
    form->addRow(progRow);
    return box;
}

QWidget* MainWindow::buildControlsPanel() {
    auto* box = new QGroupBox("Pruning");
    auto* form = new QFormLayout(box);

    auto* ratioRow = new QHBoxLayout;
    m_ratioSlider = new QSlider(Qt::Horizontal);
    m_ratioSlider->setObjectName("ratioSlider");
    m_ratioSlider->setRange(0, 1000);
    m_ratioSlider->setPageStep(50);
    m_ratioSpin = new QDoubleSpinBox;
    m_ratioSpin->setRange(0.0, 1.0);
    m_ratioSpin->setDecimals(3);
    m_ratioSpin->setSingleStep(0.01);
    const char* ratioTip =
        "Reduction ratio R: the fraction of the N vision tokens removed from layer K on.\n"
        "Budget B = round(N·(1−R)); the paper's 88.9% keeps 64 of 576, 77.8% keeps 128.";
    set_tip(m_ratioSlider, ratioTip);
    set_tip(m_ratioSpin, ratioTip);
    ratioRow->addWidget(m_ratioSlider, 1);
    ratioRow->addWidget(m_ratioSpin);
    form->addRow("Reduction R", ratioRow);
    m_keptLabel = new QLabel;
    m_keptLabel->setObjectName("keptLabel");
    m_keptLabel->setToolTip("Image tokens really kept by each method / all image tokens N (nominal budget B)");
    form->addRow("", m_keptLabel);
    connect(m_ratioSlider, &QSlider::valueChanged, this, [this](int v) {
        if (m_updatingControls) return;
        m_updatingControls = true;
        m_ratioSpin->setValue(v / 1000.0);
        m_updatingControls = false;
        onParametersChanged();
    });
    connect(m_ratioSlider, &QSlider::sliderReleased, m_state, &RunState::interactionFinished);
    connect(m_ratioSpin, &QDoubleSpinBox::valueChanged, this, [this](double v) {
        if (m_updatingControls) return;
        m_updatingControls = true;
        m_ratioSlider->setValue(int(std::lround(v * 1000)));
        m_updatingControls = false;
        onParametersChanged();
    });

    m_layer = new QSpinBox;
    m_layer->setObjectName("layerK");
    m_layer->setRange(1, 31);
    m_layer->setValue(2);
    set_tip(m_layer, "Pruning layer K: layers 0…K−1 see every token; the selection uses layer K−1's keys "
                     "(DART) or attention (FastV); layers K… see only the kept vision tokens (paper: K=2).");
    form->addRow("Layer K", m_layer);

    m_pivotsImage = new QSpinBox;
    m_pivotsImage->setRange(0, 64);
    m_pivotsImage->setValue(4);
    set_tip(m_pivotsImage, "DART image pivots P_img: vision tokens chosen by the pivot criterion; every other "
                           "token is scored by its duplication (cosine similarity) with the pivots and the least "
                           "duplicated ones are kept.");
    m_pivotsText = new QSpinBox;
    m_pivotsText->setRange(0, 64);
    m_pivotsText->setValue(4);
    set_tip(m_pivotsText, "DART text pivots P_txt: pivots taken among the text tokens after the image.");
    auto* pivRow = new QHBoxLayout;
    pivRow->addWidget(new QLabel("image"));
    pivRow->addWidget(m_pivotsImage);
    pivRow->addWidget(new QLabel("text"));
    pivRow->addWidget(m_pivotsText);
    form->addRow("DART pivots", pivRow);

    m_criterion = new QComboBox;
    m_criterion->addItems({"k-norm-max", "k-norm-min", "v-norm-max", "v-norm-min", "attn-max", "attn-min", "random"});
    set_tip(m_criterion, "How DART picks its pivots at layer K−1: largest/smallest L1 norm of the keys (K-norm, "
                         "the paper's default) or values (V-norm), most/least attended tokens, or random.");
    form->addRow("Pivot criterion", m_criterion);
    m_order = new QComboBox;
    m_order->addItems({"reference", "score"});
    set_tip(m_order, "Order in which pivots are processed: reference = the official code's order (a Python "
                     "set), score = by criterion score.");
    form->addRow("Pivot order", m_order);
    m_fastvScore = new QComboBox;
    m_fastvScore->addItems({"last", "mean"});
    set_tip(m_fastvScore, "FastV ranks vision tokens by the attention they receive at layer K−1: 'last' = the last "
                          "token's attention row (official code), 'mean' = averaged over all query rows (paper).");
    form->addRow("FastV score", m_fastvScore);
    m_maxNewTokens = new QSpinBox;
    m_maxNewTokens->setRange(1, 1024);
    m_maxNewTokens->setValue(64);
    set_tip(m_maxNewTokens, "Maximum number of generated tokens (greedy decoding).");
    form->addRow("Max new tokens", m_maxNewTokens);

    m_showRandom = new QCheckBox("Show random-pruning baseline");
    set_tip(m_showRandom, "Adds a column that keeps B vision tokens chosen uniformly at random.");
    form->addRow(m_showRandom);

    m_overlayMode = new QComboBox;
    m_overlayMode->setObjectName("overlayMode");
    m_overlayMode->addItem("kept tokens", "kept");
    m_overlayMode->addItem("duplication heatmap", "dup");
    m_overlayMode->addItem("FastV attention heatmap", "fastv");
    m_overlayMode->addItem("key norm (L1)", "keynorm");
    set_tip(m_overlayMode, "kept: pruned patches faded, DART pivots outlined; dup: max cosine similarity to a "
                           "pivot (DART's duplication score); fastv: attention received at layer K−1; key norm: "
                           "L1 norm of layer K−1's keys.");
    connect(m_overlayMode, &QComboBox::currentIndexChanged, this, [this] { updateOverlays(); });
    form->addRow("Overlay", m_overlayMode);

    // LLaVA-NeXT: its base image and its tiles both cover the whole picture; one is drawn at a time
    m_tokenView = new QComboBox;
    m_tokenView->setObjectName("tokenView");
    m_tokenView->addItem("tiles (high resolution)", "tiles");
    m_tokenView->addItem("base image (336 px)", "base");
    set_tip(m_tokenView, "LLaVA-NeXT only: the image span holds the base image's tokens first, then the tiles' "
                         "tokens row by row (each row ended by an image_newline token, which has no pixels). "
                         "Choose which of the two the overlays and the inspector show.");
    m_tokenView->setEnabled(false);
    connect(m_tokenView, &QComboBox::currentIndexChanged, this, [this] {
        for (MethodColumn* c : m_columns) c->view()->setTokenView(m_tokenView->currentData().toString() == "base" ? 0 : 1);
        updateOverlays();
    });
    form->addRow("NeXT view", m_tokenView);

    m_truthTags = new QLineEdit;
    m_truthTags->setObjectName("truthTags");
    m_truthTags->setPlaceholderText("objects really in the image: dog, frisbee, person");
    m_truthTags->setToolTip("Objects present in the image. Object words in an answer that are not listed are "
                            "flagged as hallucinations (COCO vocabulary, plurals and synonyms; CHAIR_i = "
                            "hallucinated mentions / all object mentions).");
    connect(m_truthTags, &QLineEdit::textChanged, this, [this] { updateAnswers(); });
    form->addRow("Objects present", m_truthTags);

    m_runButton = new QPushButton("Run (Ctrl+R)");
    m_runButton->setObjectName("runButton");
    connect(m_runButton, &QPushButton::clicked, this, &MainWindow::runNow);
    form->addRow(m_runButton);

    m_autoRunThreshold = new QSpinBox;
    m_autoRunThreshold->setObjectName("autoRunThreshold");
    m_autoRunThreshold->setRange(0, 600000);
    m_autoRunThreshold->setSingleStep(500);
    m_autoRunThreshold->setSuffix(" ms");
    m_autoRunThreshold->setSpecialValueText("never");
    m_autoRunThreshold->setValue(2000);
    set_tip(m_autoRunThreshold, "After a change, the answers regenerate by themselves only while the last run took "
                                "less than this; otherwise they are marked stale until you press Run. The overlays "
                                "and kept counts always follow the controls at once.");
    connect(m_autoRunThreshold, &QSpinBox::valueChanged, this, [this](int ms) {
        m_state->setAutoRunThresholdMs(ms);
        if (!m_updatingControls) saveSettings();
    });
    form->addRow("Auto-run below", m_autoRunThreshold);

    auto changed = [this] {
        if (!m_updatingControls) onParametersChanged();
    };
    connect(m_layer, &QSpinBox::valueChanged, this, changed);
    connect(m_pivotsImage, &QSpinBox::valueChanged, this, changed);
    connect(m_pivotsText, &QSpinBox::valueChanged, this, changed);
    connect(m_criterion, &QComboBox::currentIndexChanged, this, changed);
    connect(m_order, &QComboBox::currentIndexChanged, this, changed);
    connect(m_fastvScore, &QComboBox::currentIndexChanged, this, changed);
    connect(m_maxNewTokens, &QSpinBox::valueChanged, this, [this] {
        if (!m_updatingControls) syncRunState();
    });
    connect(m_showRandom, &QCheckBox::toggled, this, &MainWindow::setRandomVisible);

    m_updatingControls = true;
    m_ratioSpin->setValue(0.778);
    m_ratioSlider->setValue(778);
    m_updatingControls = false;
    updateKeptLabel();
    return box;
}

void MainWindow::buildMenus() {
    QMenu* file = menuBar()->addMenu("&File");
    QAction* openImage = file->addAction("Open &image…", this, &MainWindow::openImageDialog);
    openImage->setShortcut(QKeySequence("Ctrl+O"));
    m_recentMenu = file->addMenu("Recent images");
    QAction* openModel = file->addAction("Open &model…", this, &MainWindow::openModelDialog);
    openModel->setShortcut(QKeySequence("Ctrl+M"));
    file->addAction("Open bundled &demo", this, [this] { openDemo(true); });
    file->addAction("Open eval &results…", this, [this] { openEvalResults(QString()); })
        ->setToolTip("Plot a dartlens-cli eval output directory: metric vs kept tokens per method");
    file->addSeparator();
    QAction* exportAct = file->addAction("&Export…", this, &MainWindow::exportInteractive);
    exportAct->setShortcut(QKeySequence("Ctrl+E"));
    file->addSeparator();
    QAction* quit = file->addAction("&Quit", this, &QWidget::close);
    quit->setShortcut(QKeySequence::Quit);

    QMenu* run = menuBar()->addMenu("&Run");
    QAction* runAct = run->addAction("&Run", this, &MainWindow::runNow);
    runAct->setShortcut(QKeySequence("Ctrl+R"));
    QAction* cold = run->addAction("Measure &cold", this, &MainWindow::measureCold);
    cold->setToolTip("Run every method again without the prefix cache, so that every stage of the latency "
                     "chart is measured rather than composed from cached per-layer times");
    QAction* cancel = run->addAction("&Cancel", this, &MainWindow::cancelWork);
    cancel->setShortcut(QKeySequence(Qt::Key_Escape));

    QMenu* view = menuBar()->addMenu("&View");
    view->addAction("Fit pictures", this, [this] {
        for (MethodColumn* c : m_columns) c->view()->fitToWindow();
    });

    QToolBar* tb = addToolBar("Main");
    tb->setObjectName("mainToolBar");
    tb->addAction(openImage);
    tb->addAction(openModel);
    tb->addAction(runAct);
    tb->addAction(cold);
    tb->addAction(cancel);
    tb->addAction(exportAct);
    rebuildRecentMenu();
}

// --- settings -----------------------------------------------------------------------------------

void MainWindow::restoreSettings() {
    QSettings s;
    m_updatingControls = true;
    m_question->setText(s.value("question", m_question->text()).toString());
    m_template->setCurrentText(s.value("template", m_template->currentText()).toString());
    m_device->setCurrentText(s.value("device", "auto").toString());
    m_dtype->setCurrentText(s.value("dtype", "auto").toString());
    m_threads->setValue(s.value("threads", 0).toInt());
    const double ratio = s.value("ratio", m_ratioSpin->value()).toDouble();
    m_ratioSpin->setValue(ratio);
    m_ratioSlider->setValue(int(std::lround(ratio * 1000)));
    m_layer->setValue(s.value("layer", m_layer->value()).toInt());
    m_pivotsImage->setValue(s.value("pivotsImage", m_pivotsImage->value()).toInt());
    m_pivotsText->setValue(s.value("pivotsText", m_pivotsText->value()).toInt());
    m_criterion->setCurrentText(s.value("criterion", m_criterion->currentText()).toString());
    m_order->setCurrentText(s.value("order", m_order->currentText()).toString());
    m_fastvScore->setCurrentText(s.value("fastvScore", m_fastvScore->currentText()).toString());
    m_maxNewTokens->setValue(s.value("maxNewTokens", m_maxNewTokens->value()).toInt());
    m_showRandom->setChecked(s.value("showRandom", false).toBool());
    m_columns.back()->setVisible(m_showRandom->isChecked());
    const int mode = m_overlayMode->findData(s.value("overlayMode", "kept").toString());
    if (mode >= 0) m_overlayMode->setCurrentIndex(mode);
    m_truthTags->setText(s.value("truthTags").toString());
    m_autoRunThreshold->setValue(s.value("autoRunThresholdMs", m_autoRunThreshold->value()).toInt());
    m_recentImages = s.value("recentImages").toStringList();
    m_updatingControls = false;
    rebuildRecentMenu();
    if (s.contains("geometry")) restoreGeometry(s.value("geometry").toByteArray());
    if (s.contains("windowState")) restoreState(s.value("windowState").toByteArray());

    const QString model = s.value("model/dir").toString();
    const QString image = s.value("image/path").toString();
    if (model.isEmpty() && m_options.openDemoIfFirstStart) {
        openDemo(true);
        return;
    }
    if (!image.isEmpty() && QFileInfo(image).isFile()) openImage(image);
    if (is_model_dir(model)) loadModel(model);
}

void MainWindow::saveSettings() {
    if (!m_options.restoreSettings) return;  // tests and screenshots leave the user's settings alone
    QSettings s;
    if (!m_modelDir.isEmpty()) s.setValue("model/dir", m_modelDir);
    if (!m_imagePath.isEmpty()) s.setValue("image/path", m_imagePath);
    s.setValue("question", m_question->text());
    s.setValue("template", m_template->currentText());
    s.setValue("device", m_device->currentText());
    s.setValue("dtype", m_dtype->currentText());
    s.setValue("threads", m_threads->value());
    s.setValue("ratio", m_ratioSpin->value());
    s.setValue("layer", m_layer->value());
    s.setValue("pivotsImage", m_pivotsImage->value());
    s.setValue("pivotsText", m_pivotsText->value());
    s.setValue("criterion", m_criterion->currentText());
    s.setValue("order", m_order->currentText());
    s.setValue("fastvScore", m_fastvScore->currentText());
    s.setValue("maxNewTokens", m_maxNewTokens->value());
    s.setValue("showRandom", m_showRandom->isChecked());
    s.setValue("overlayMode", m_overlayMode->currentData().toString());
    s.setValue("truthTags", m_truthTags->text());
    s.setValue("autoRunThresholdMs", m_autoRunThreshold->value());
    s.setValue("recentImages", m_recentImages);
    s.setValue("geometry", saveGeometry());
    s.setValue("windowState", saveState());
}

void MainWindow::closeEvent(QCloseEvent* event) {
    saveSettings();
    m_state->cancelAutoRun();
    m_engine->cancel();
    QMainWindow::closeEvent(event);
}

// --- inputs -------------------------------------------------------------------------------------

void MainWindow::openImageDialog() {
    const QString path = QFileDialog::getOpenFileName(
        this, "Open image", m_imagePath.isEmpty() ? QDir::homePath() : QFileInfo(m_imagePath).path(),
        "Images (*.jpg *.jpeg *.png *.bmp *.webp *.tif *.tiff);;All files (*)");
    if (!path.isEmpty()) openImage(path);
}

void MainWindow::openModelDialog() {
    const QString dir = QFileDialog::getExistingDirectory(this, "Open llava-hf model directory",
                                                          m_modelDir.isEmpty() ? QDir::homePath() : m_modelDir);
    if (!dir.isEmpty()) loadModel(dir);
}

void MainWindow::openImage(const QString& path) {
    dl::RgbImage img;
    try {
        img = dl::load_image_for_display(path.toStdString());
    } catch (const std::exception& e) {
        const dl::UserMessage m = dl::user_message(e);
        showError(QString::fromStdString(m.summary), QString::fromStdString(m.details));
        return;
    }
    m_original = std::make_shared<const dl::RgbImage>(std::move(img));
    m_imagePath = QFileInfo(path).absoluteFilePath();
    // A scene-world picture (scenes.jsonl beside it lists it): its exact objects fill "Objects
    // present" and answers are read with the scene world's vocabulary.
    std::vector<std::string> sceneObjects;
    bool isScene = false;
    try {
        isScene = dl::scene_truth_for_image(m_imagePath.toStdString(), &sceneObjects);
    } catch (const std::exception& e) {
        const dl::UserMessage m = dl::user_message(e);
        showError(QString::fromStdString(m.summary), QString::fromStdString(m.details));
    }
    m_vocabularyName = isScene ? "scenes" : "coco";
    if (isScene) {
        QStringList tags;
        for (const std::string& o : sceneObjects) tags << QString::fromStdString(o);
        m_truthTags->setText(tags.join(", "));
    }
    m_imageLabel->setText(QFileInfo(path).fileName() + QString(" <small>(%1×%2)</small>")
                                                           .arg(m_original->width)
                                                           .arg(m_original->height));
    m_imageLabel->setToolTip(m_imagePath);
    m_prepared = false;
    m_geometry = {};
    addRecentImage(m_imagePath);
    syncRunState();
    m_state->reset();  // pictures, answers and figures follow through its signals
    updateChart();
    saveSettings();
    requestPreview();
}

void MainWindow::loadModel(const QString& dir) {
    if (!is_model_dir(dir)) {
        showError("not a model directory (no config.json): " + dir);
        return;
    }
    m_modelDir = QDir(dir).absolutePath();
    m_modelLoaded = false;
    m_prepared = false;
    syncRunState();
    m_state->reset();
    updateChart();
    m_modelLabel->setText("<i>loading " + QDir(dir).dirName() + "…</i>");
    m_randomWeightsLabel->setVisible(false);
    dl::LoadOptions o;
    o.device = m_device->currentText().toStdString();
    o.dtype = m_dtype->currentText().toStdString();
    o.threads = m_threads->value();
    m_engine->loadModel(m_modelDir, o);
}

void MainWindow::openDemo(bool run) {
    m_runAfterLoad = run;
    QString model = bundled_demo_model_dir();
    // the trained scene-world model looks at a scene (with its ground truth); others at the photo
    const bool shapes = !model.isEmpty() && QFileInfo(model).fileName() == "dartlens-shapes";
    QString image = shapes ? demo_scene_image() : QString();
    if (image.isEmpty()) image = sample_image_path();
    if (image.isEmpty()) image = synthetic_demo_image();  // resources/ not installed
    if (!image.isEmpty()) openImage(image);
    else statusBar()->showMessage("sample image not found (set DARTLENS_RESOURCES)", 10000);
    if (model.isEmpty() && is_model_dir(generated_demo_model_dir())) model = generated_demo_model_dir();
    if (!model.isEmpty()) {
        loadModel(model);
        return;
    }
    // generate the tiny random-weight demo model in the background, then load it
    const QString dir = generated_demo_model_dir();
    m_modelLabel->setText("<i>generating the demo model…</i>");
    m_progress->setVisible(true);
    m_progress->setRange(0, 0);
    m_stage->setText("generating demo model");
    auto* watcher = new QFutureWatcher<QString>(this);
    connect(watcher, &QFutureWatcher<QString>::finished, this, [this, watcher, dir] {
        const QString error = watcher->result();
        watcher->deleteLater();
        m_progress->setRange(0, 1000);
        m_progress->setVisible(false);
        if (!error.isEmpty()) {
            m_modelLabel->setText("<i>no model</i>");
            showError("could not generate the demo model: " + error);
            return;
        }
        loadModel(dir);
    });
    watcher->setFuture(QtConcurrent::run([dir] { return generate_demo_model(dir); }));
}

BenchmarkView* MainWindow::openEvalResults(const QString& dir) {
    if (!m_benchmark) {
        m_benchmark = new BenchmarkView;
        m_benchmark->setAttribute(Qt::WA_DeleteOnClose, false);
        connect(this, &QObject::destroyed, m_benchmark, &QObject::deleteLater);
        connect(m_benchmark, &BenchmarkView::openQuestion, this, [this](const QString& image, const QString& question) {
            openImage(image);
            setQuestion(question);
            raise();
            activateWindow();
            runNow();
        });
    }
    if (!dir.isEmpty()) m_benchmark->openDirectory(dir);
    m_benchmark->show();
    m_benchmark->raise();
    return m_benchmark;
}

void MainWindow::setQuestion(const QString& question) {
    m_question->setText(question);
    syncRunState();
    requestPreview();
}

void MainWindow::setRatio(double ratio) { m_ratioSpin->setValue(ratio); }
void MainWindow::setTruthTags(const QString& tags) { m_truthTags->setText(tags); }

void MainWindow::setOverlayMode(const QString& mode) {
    const int i = m_overlayMode->findData(mode);
    if (i >= 0) m_overlayMode->setCurrentIndex(i);
}

void MainWindow::setRandomVisible(bool on) {
    if (m_showRandom->isChecked() != on) {
        m_showRandom->setChecked(on);  // re-enters through toggled
        return;
    }
    m_columns.back()->setVisible(on);
    syncRunState();
    updateFigures();
    updateChart();
    updateKeptLabel();
    requestPreview();
    if (on && m_modelLoaded && !m_imagePath.isEmpty()) m_state->scheduleAutoRun();
    saveSettings();
}

void MainWindow::addRecentImage(const QString& path) {
    m_recentImages.removeAll(path);
    m_recentImages.prepend(path);
    while (m_recentImages.size() > 8) m_recentImages.removeLast();
    rebuildRecentMenu();
}

void MainWindow::rebuildRecentMenu() {
    if (!m_recentMenu) return;
    m_recentMenu->clear();
    for (const QString& p : m_recentImages)
        m_recentMenu->addAction(QFileInfo(p).fileName(), this, [this, p] { openImage(p); })->setToolTip(p);
    m_recentMenu->setEnabled(!m_recentImages.isEmpty());
}

void MainWindow::dragEnterEvent(QDragEnterEvent* event) {
    if (event->mimeData()->hasUrls()) event->acceptProposedAction();
}

void MainWindow::dropEvent(QDropEvent* event) {
    for (const QUrl& url : event->mimeData()->urls()) {
        const QString path = url.toLocalFile();
        if (path.isEmpty()) continue;
        if (QFileInfo(path).isDir()) loadModel(path);
        else openImage(path);
        event->acceptProposedAction();
        return;
    }
}

// --- requests -----------------------------------------------------------------------------------

QStringList MainWindow::visibleMethods() const {
    QStringList m = {"none", "dart", "fastv"};
    if (m_showRandom && m_showRandom->isChecked()) m << "random";
    return m;
}

int MainWindow::columnIndex(const QString& method) const {
    for (int i = 0; i < m_columns.size(); ++i)
        if (m_columns[i]->method() == method) return i;
    return -1;
}

MethodColumn* MainWindow::column(const QString& method) const {
    const int i = columnIndex(method);
    return i >= 0 ? m_columns[i] : nullptr;
}

dl::PruneConfig MainWindow::configFor(const QString& method) const {
    dl::PruneConfig c;
    c.method = method.toStdString();
    if (method == "none") return c;
    c.layer = m_layer->value();
    c.ratio = m_ratioSpin->value();
    if (method == "dart") {
        c.pivots_image = m_pivotsImage->value();
        c.pivots_text = m_pivotsText->value();
        c.pivot_criterion = m_criterion->currentText().toStdString();
        c.pivot_order = m_order->currentText().toStdString();
    }
    if (method == "fastv") c.fastv_score = m_fastvScore->currentText().toStdString();
    return c;
}

dl::RunRequest MainWindow::currentRequest() const {
    dl::RunRequest r;
    r.image_path = m_imagePath.toStdString();
    r.question = m_question->text().toStdString();
    r.template_name = m_template->currentText().toStdString();
    r.max_new_tokens = m_maxNewTokens->value();
    return r;
}

QString MainWindow::inputsKey() const {
    return QStringList{m_modelDir, m_imagePath, m_question->text(), m_template->currentText(),
                       QString::number(m_maxNewTokens->value())}
        .join(QChar(0x1f));
}

QString MainWindow::runKey(const QString& method) const { return run_key(inputsKey(), configFor(method)); }

void MainWindow::syncRunState() {
    QMap<QString, QString> keys;
    for (const MethodSpec& spec : k_methods) keys[spec.method] = runKey(spec.method);
    m_state->setControls(visibleMethods(), keys);
}

const dl::PruningResult* MainWindow::resultFor(const QString& method) const { return m_state->selection(method); }
const dl::MethodRun* MainWindow::runFor(const QString& method) const { return m_state->run(method); }
bool MainWindow::hasResults() const { return m_state->hasResults(); }

void MainWindow::requestPreview() {
    if (!m_modelLoaded || m_imagePath.isEmpty()) return;
    const QStringList methods = visibleMethods();
    QVector<dl::PruneConfig> configs;
    for (const QString& m : methods) configs.push_back(configFor(m));
    m_state->beginPreview(m_engine->preview(currentRequest(), configs), methods);
}

void MainWindow::onParametersChanged() {
    updateKeptLabel();
    updateSubtitles();
    syncRunState();  // marks stale answers
    requestPreview();
    m_state->controlsChanged(m_ratioSlider->isSliderDown());  // auto-run, or say the answers are stale
    saveSettings();
}

int MainWindow::autoRunThresholdMs() const { return m_state->autoRunThresholdMs(); }
void MainWindow::setAutoRunThresholdMs(int ms) { m_autoRunThreshold->setValue(ms); }
qint64 MainWindow::lastRunMs() const { return m_state->lastRunMs(); }

void MainWindow::runNow() { startRun(true); }

void MainWindow::measureCold() { startRun(false); }

void MainWindow::startRun(bool usePrefixCache) {
    m_state->cancelAutoRun();
    if (!m_modelLoaded) {
        if (m_modelDir.isEmpty()) showError("Open a model first (Ctrl+M).");
        else m_runAfterLoad = true;  // still loading: run when it is ready
        return;
    }
    if (m_imagePath.isEmpty()) {
        showError("Open an image first (Ctrl+O).");
        return;
    }
    syncRunState();  // a question typed but not yet confirmed counts
    // a cold measurement re-times every visible method; a run regenerates the stale ones
    const QStringList methods = m_state->methodsToRun(!usePrefixCache);
    if (methods.isEmpty()) {  // every answer is current
        emit runCompleted();
        return;
    }
    QVector<dl::PruneConfig> configs;
    for (const QString& m : methods) configs.push_back(configFor(m));
    const quint64 gen = m_engine->run(currentRequest(), configs, m_maxNewTokens->value(), usePrefixCache);
    m_state->beginRun(gen, methods, !usePrefixCache);
}

void MainWindow::cancelWork() {
    m_state->cancelAutoRun();
    m_runAfterLoad = false;
    m_engine->cancel();
}

// --- views --------------------------------------------------------------------------------------

dl::OverlayOptions MainWindow::overlayOptions() const {
    dl::OverlayOptions o;
    o.mode = m_overlayMode->currentData().toString().toStdString();
    o.view = m_tokenView->currentData().toString().toStdString();
    o.legend = true;
    o.show_pivots = true;
    return o;
}

void MainWindow::updateModelLabels() {
    const dl::ModelInfo& i = m_modelInfo;
    m_modelLabel->setText(QString("<b>%1</b><br/><small>%2 · %3 params<br/>weights %4 → compute %5 on %6, "
                                  "%7 threads<br/>%8 layers · %9 (%10×%10 px, %11)</small>")
                              .arg(QString::fromStdString(i.name).toHtmlEscaped(), format_bytes(i.weight_bytes),
                                   QString::number(double(i.num_parameters) / 1e6, 'f', 1) + "M",
                                   QString::fromStdString(i.weight_dtype), QString::fromStdString(i.compute_dtype),
                                   QString::fromStdString(i.device), QString::number(i.threads),
                                   QString::number(i.num_layers),
                                   // LLaVA-NeXT: per view; the span (base + tiles + newlines) follows the picture
                                   i.preprocess == "anyres" ? QString("%1 image tokens per view").arg(i.num_image_tokens)
                                                            : QString("%1 image tokens").arg(i.num_image_tokens))
                              .arg(i.image_size)
                              .arg(QString::fromStdString(i.preprocess)));
    m_modelLabel->setToolTip(QString::fromStdString(i.dir + " (" + i.layout + ")"));
    m_randomWeightsLabel->setVisible(i.random_weights);
    m_updatingControls = true;
    m_layer->setRange(1, std::max(1, i.num_layers - 1));
    m_updatingControls = false;
    updateKeptLabel();
    updateSubtitles();
}

void MainWindow::updateSubtitles() {
    for (MethodColumn* c : m_columns) c->setSubtitle(QString::fromStdString(configFor(c->method()).label()));
}

QString MainWindow::keptText() const { return m_keptLabel->text(); }

void MainWindow::updateKeptLabel() {
    QStringList parts;
    for (const QString& m : visibleMethods()) {
        if (m == "none") continue;
        const dl::PruningResult* r = resultFor(m);
        MethodColumn* c = column(m);
        if (r && r->method == m.toStdString()) {
            parts << c->title() + " " + kept_text(*r);
            c->setKeptText(kept_text(*r));
        } else {
            c->setKeptText("");
        }
    }
    if (const dl::PruningResult* r = resultFor("none")) column("none")->setKeptText(kept_text(*r));
    if (parts.isEmpty() && m_modelLoaded) {
        const int n = m_modelInfo.num_image_tokens;
        const dl::PruneConfig dart = configFor("dart");
        if (m_modelInfo.preprocess == "anyres")  // NeXT: N is known once a picture is prepared
            parts << (dart.keep >= 0 ? QString("budget %1 of the picture's span").arg(dart.keep)
                                     : QString("R = %1 of the picture's span").arg(dart.ratio, 0, 'f', 3));
        else
            parts << QString("budget %1 / %2").arg(dart.budget_for(n)).arg(n);
    }
    m_keptLabel->setText(parts.join("\n"));
}

void MainWindow::updateOverlays() {
    // a snapshot of what to draw; the renderer draws it on its thread and showFrames puts it up
    OverlayJob job;
    job.original = m_original;
    job.geometry = m_geometry;
    job.prepared = m_prepared;
    job.options = overlayOptions();
    job.displayMax = k_display_max;
    for (MethodColumn* c : m_columns) {
        if (c->isHidden() && m_original) continue;  // the random column when switched off
        const dl::PruningResult* r = resultFor(c->method());
        job.methods << c->method();
        job.hasSelection << (r != nullptr);
        job.selections << (r ? *r : dl::PruningResult{});
    }
    m_renderGen = m_renderer->render(std::move(job));
}

void MainWindow::showFrames(quint64 generation, const OverlayFrames& frames) {
    for (int i = 0; i < frames.methods.size(); ++i) {
        MethodColumn* c = column(frames.methods[i]);
        if (!c) continue;
        c->view()->setImageGeometry(frames.displayGeometry);
        c->view()->setImage(frames.images[i], frames.pictureHeight);
    }
    if (!frames.error.isEmpty()) statusBar()->showMessage(frames.error, 5000);
    if (m_previewShownAt && generation >= m_previewShownAt) {
        m_previewShownAt = 0;
        emit previewUpdated();
    }
    if (m_runShownAt && generation >= m_runShownAt) {
        m_runShownAt = 0;
        emit runCompleted();
    }
}

void MainWindow::updateAnswers() {
    const dl::ObjectVocabulary& vocabulary = dl::ObjectVocabulary::builtin(m_vocabularyName);
    const std::set<std::string> truth = parse_object_tags(m_truthTags->text().toStdString(), vocabulary);
    const dl::MethodRun* ref = runFor("none");
    const std::string refText = ref ? ref->text : std::string();
    for (MethodColumn* c : m_columns) {
        const dl::MethodRun* run = runFor(c->method());
        if (!run) {
            c->setAnswerHtml("<i style=\"color:#888888;\">no answer yet — press Run (Ctrl+R)</i>", false);
            continue;
        }
        const bool isRef = c->method() == "none" || !ref;
        AnswerAnalysis a = analyse_answer(run->text, refText, truth, isRef, vocabulary);
        // a cancelled answer says so itself (it is regenerated on Run like a stale one)
        const bool stale = m_state->isStale(c->method());
        QString html = QString::fromStdString(answer_html(a));
        if (run->cancelled)
            html += QString("<p><i style=\"color:#888888;\">cancelled after %1 tokens — press Run (Ctrl+R) for the "
                            "whole answer</i></p>")
                        .arg(run->output_ids.size());
        c->setAnswerHtml(html, stale);
        const QStringList methods = visibleMethods();
        int row = 0;
        for (const QString& m : methods) {
            if (!m_state->countsInFigures(m)) continue;
            if (m == c->method()) m_figureModel->setChair(row, a.chair());
            ++row;
        }
    }
}

void MainWindow::updateFigures() {
    QStringList names;
    QVector<dl::MethodRun> runs;
    for (const QString& m : visibleMethods())
        if (m_state->countsInFigures(m)) {
            names << column(m)->title();
            runs << *m_state->run(m);
        }
    const QVector<Figures> figures = compute_figures(names, runs);
    m_figureModel->setFigures(figures);
    for (MethodColumn* c : m_columns) {
        const int i = names.indexOf(c->title());
        c->setFigures(i >= 0 ? &figures[i] : nullptr);
    }
}

QChart* MainWindow::chart() const { return m_chartView->chart(); }

void MainWindow::updateChart() {
    QChart* chart = m_chartView->chart();
    chart->removeAllSeries();
    for (QAbstractAxis* a : chart->axes()) {
        chart->removeAxis(a);
        delete a;
    }
    const QVector<Figures>& f = m_figureModel->figures();
    m_chartNote->setVisible(false);
    if (f.isEmpty()) return;
    // A run from the prefix cache did not measure its vision and layers < K: those segments are
    // the per-layer times of the cache's build, added up. They go into hatched sets of their own
    // ("vision (composed)", "prefill (composed)"), so composed and measured bars look different.
    auto* series = new QStackedBarSeries;
    struct Stage {
        const char* name;
        QColor color;
        bool composed;
    };
    const Stage stages[] = {{"vision", QColor("#4e79a7"), false},   {"vision (composed)", QColor("#4e79a7"), true},
                            {"prefill", QColor("#f28e2b"), false},  {"prefill (composed)", QColor("#f28e2b"), true},
                            {"selection", QColor("#59a14f"), false}, {"decode", QColor("#e15759"), false}};
    QVector<QBarSet*> sets;
    for (const Stage& st : stages) sets << new QBarSet(st.name);
    QStringList categories;
    double maxTotal = 0;
    bool anyComposed = false;
    for (const Figures& x : f) {
        categories << x.name;
        anyComposed |= x.composed;
        *sets[0] << (x.composed ? 0.0 : x.vision_ms);
        *sets[1] << (x.composed ? x.vision_ms : 0.0);
        *sets[2] << (x.composed ? 0.0 : x.prefill_ms);
        *sets[3] << (x.composed ? x.prefill_ms : 0.0);
        *sets[4] << x.selection_ms;
        *sets[5] << x.decode_ms;
        maxTotal = std::max({maxTotal, x.total_ms, x.vision_ms + x.prefill_ms + x.selection_ms + x.decode_ms});
    }
    for (int i = 0; i < sets.size(); ++i) {
        const bool composedSet = stages[i].composed;
        // measured-only charts keep the legend to the four stages
        if (composedSet && !anyComposed) {
            delete sets[i];
            continue;
        }
        series->append(sets[i]);
    }
    chart->addSeries(series);
    // colours after addSeries: adding a series applies the chart theme's colours
    for (QBarSet* set : series->barSets()) {
        for (const Stage& st : stages) {
            if (set->label() != st.name) continue;
            set->setBorderColor(st.color.darker(120));
            set->setBrush(st.composed ? QBrush(st.color, Qt::BDiagPattern) : QBrush(st.color));
        }
    }
    connect(series, &QStackedBarSeries::hovered, this, [this](bool on, int index, QBarSet* set) {
        const QVector<Figures>& figs = m_figureModel->figures();
        if (!on || index < 0 || index >= figs.size()) {
            QToolTip::hideText();
            return;
        }
        QString how = "measured in this run";
        if (set->label() == "vision (composed)")
            how = QString::fromUtf8("composed: measured when the prefix cache was filled, not by this run "
                                    "(Run ▸ Measure cold times it)");
        else if (set->label() == "prefill (composed)")
            how = QString::fromUtf8("composed: layers < K are the per-layer times measured when the prefix cache "
                                    "was filled, added to layers ≥ K measured in this run (Run ▸ Measure cold times "
                                    "it all)");
        QToolTip::showText(QCursor::pos(), QString("%1 — %2: %3 ms\n%4")
                                               .arg(figs[index].name, set->label())
                                               .arg(set->at(index), 0, 'f', 1)
                                               .arg(how));
    });
    m_chartNote->setVisible(anyComposed);
    auto* axisX = new QBarCategoryAxis;
    axisX->append(categories);
    auto* axisY = new QValueAxis;
    axisY->setTitleText("ms");
    axisY->setLabelFormat("%.0f");
    axisY->setTickCount(5);
    axisY->setRange(0, maxTotal > 0 ? maxTotal * 1.1 : 1);
    chart->addAxis(axisX, Qt::AlignBottom);
    chart->addAxis(axisY, Qt::AlignLeft);
    series->attachAxis(axisX);
    series->attachAxis(axisY);
}

void MainWindow::onPatchHovered(int index, QPoint globalPos) {
    auto* view = qobject_cast<OverlayView*>(sender());
    for (MethodColumn* c : m_columns) c->view()->highlightPatch(index);
    if (!view) return;
    if (index < 0) {
        view->showPatchTooltip("", globalPos);
        statusBar()->clearMessage();
        return;
    }
    std::vector<MethodSelection> sel;
    for (const QString& m : visibleMethods())
        if (const dl::PruningResult* r = resultFor(m)) sel.push_back({column(m)->title().toStdString(), r});
    const QString text = QString::fromStdString(patch_tooltip(m_geometry, index, sel));
    view->showPatchTooltip(text, globalPos);
    statusBar()->showMessage(text.section('\n', 0, 0) + " — " + text.section('\n', -1));
}

void MainWindow::showError(const QString& summary, const QString& details) {
    statusBar()->showMessage(summary, 10000);
    auto* box = new QMessageBox(QMessageBox::Warning, "DartLens", summary, QMessageBox::Ok, this);
    box->setObjectName("errorBox");
    if (!details.isEmpty()) box->setDetailedText(details);  // LibTorch's many lines, on demand
    box->setAttribute(Qt::WA_DeleteOnClose);
    box->open();  // not exec(): the window keeps running
    emit errorShown(summary);
}

// --- export -------------------------------------------------------------------------------------

bool MainWindow::exportTo(const QString& dir, bool overwrite) {
    // a snapshot: the exporter's thread draws and writes while the window goes on
    ExportJob job;
    for (const QString& m : visibleMethods())
        if (const dl::MethodRun* r = runFor(m)) job.runs.push_back(*r);
    if (job.runs.empty() || !m_original) {
        showError("Nothing to export yet: run the comparison first (Ctrl+R).");
        return false;
    }
    job.dir = dir;
    job.overwrite = overwrite;
    job.original = m_original;
    job.geometry = m_geometry;
    job.question = m_question->text().toStdString();
    job.model = m_modelInfo;
    job.prompt = m_prompt;
    job.overlay = overlayOptions();
    m_exporter->start(std::move(job));
    statusBar()->showMessage("exporting to " + dir + QString::fromUtf8("…"));
    return true;
}

void MainWindow::exportInteractive() {
    if (!m_state->hasRuns()) {
        showError("Nothing to export yet: run the comparison first (Ctrl+R).");
        return;
    }
    const QString dir = QFileDialog::getExistingDirectory(this, "Export into directory", QDir::homePath());
    if (dir.isEmpty()) return;
    // never overwrite silently: list what would be replaced and ask
    dl::ExportRequest probe;
    for (const QString& m : visibleMethods())
        if (const dl::MethodRun* r = runFor(m)) probe.runs.push_back(*r);
    probe.dir = dir.toStdString();
    QStringList existing;
    for (const std::string& name : dl::export_file_names(probe)) {
        const QString file = QFileInfo(QString::fromStdString(name)).fileName();
        if (QFileInfo::exists(QDir(dir).filePath(file))) existing << file;
    }
    bool overwrite = false;
    if (!existing.isEmpty()) {
        const auto answer = QMessageBox::question(
            this, "Overwrite files?",
            QString("%1 already contains:\n%2\n\nReplace these files?").arg(dir, existing.join("\n")),
            QMessageBox::Yes | QMessageBox::No, QMessageBox::No);
        if (answer != QMessageBox::Yes) return;
        overwrite = true;
    }
    exportTo(dir, overwrite);  // the result arrives as a status line, or as an error
}

}  // namespace dlui
